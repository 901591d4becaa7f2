// Command consumer: see 'consumer --help'.
package main

import (
	"os"

	"github.com/flexipack/cutover/consumer/internal/cmd"
	"github.com/flexipack/cutover/shared/cliapp"
)

func main() { os.Exit(cliapp.Main(cmd.New())) }
