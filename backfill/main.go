// Command backfill: see 'backfill --help'.
package main

import (
	"os"

	"github.com/flexipack/cutover/backfill/internal/cmd"
	"github.com/flexipack/cutover/shared/cliapp"
)

func main() { os.Exit(cliapp.Main(cmd.New())) }
