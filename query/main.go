// Command query: see 'query --help'.
package main

import (
	"os"

	"github.com/flexipack/cutover/query/internal/cmd"
	"github.com/flexipack/cutover/shared/cliapp"
)

func main() { os.Exit(cliapp.Main(cmd.New())) }
