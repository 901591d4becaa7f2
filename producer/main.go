// Command producer: see 'producer --help'.
package main

import (
	"os"

	"github.com/flexipack/cutover/producer/internal/cmd"
	"github.com/flexipack/cutover/shared/cliapp"
)

func main() { os.Exit(cliapp.Main(cmd.New())) }
