// Command migrate: see 'migrate --help'.
package main

import (
	"os"

	"github.com/flexipack/cutover/migrate/internal/cmd"
	"github.com/flexipack/cutover/shared/cliapp"
)

func main() { os.Exit(cliapp.Main(cmd.New())) }
