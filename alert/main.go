// Command alert: see 'alert --help'.
package main

import (
	"os"

	"github.com/flexipack/cutover/alert/internal/cmd"
	"github.com/flexipack/cutover/shared/cliapp"
)

func main() { os.Exit(cliapp.Main(cmd.New())) }
