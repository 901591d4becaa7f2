package cliapp_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/flexipack/cutover/shared/cliapp"
)

func TestUnitsCombinesTheThreeWays(t *testing.T) {
	file := filepath.Join(t.TempDir(), "units")
	if err := os.WriteFile(file, []byte("# fleet A\nFP2,with comma\n\n  spaced  \nFP2-1\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var got []string
	var gotErr error
	app := &cli.App{Flags: cliapp.UnitFlags("", "only these units"), Action: func(c *cli.Context) error {
		got, gotErr = cliapp.Units(c)
		return nil
	}}
	args := []string{"x", "--units", "FP2-1, FP2-2", "--unit", "FP2,odd", "--unit", `FP2 "$x"`, "--units-file", file}
	if err := app.RunContext(context.Background(), args); err != nil || gotErr != nil {
		t.Fatal(err, gotErr)
	}
	want := []string{"FP2-1", "FP2-2", "FP2,odd", `FP2 "$x"`, "FP2,with comma", "  spaced  "}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("units = %q, want %q", got, want)
	}
	if err := app.RunContext(context.Background(), []string{"x", "--units-file", filepath.Dir(file)}); err != nil || gotErr == nil {
		t.Fatalf("a folder as --units-file: %v, %v", err, gotErr)
	}
}
