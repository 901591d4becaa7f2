package cliapp

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestExitStatus(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode int
		wantOut  string
	}{
		{"no error", nil, ExitOK, ""},
		{"plain error is 1", errors.New("boom"), ExitFailure, "app: boom\n"},
		{"exit error keeps its code", Exit(errors.New("gate refused"), ExitGate), ExitGate, "app: gate refused\n"},
		{"exit error wrapped further", fmt.Errorf("advance: %w", Exitf(ExitGate, "gate %s", "no-open-gaps")), ExitGate, "app: advance: gate no-open-gaps\n"},
		{"silent exit", Exit(nil, ExitNoRecords), ExitNoRecords, ""},
		{"cli.Exit still works", cli.Exit("old style", ExitGate), ExitGate, "app: old style\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			app := &cli.App{Name: "app", ErrWriter: &out}
			if got := ExitStatus(app, tt.err); got != tt.wantCode || out.String() != tt.wantOut {
				t.Fatalf("ExitStatus = %d, printed %q; want %d, %q", got, out.String(), tt.wantCode, tt.wantOut)
			}
		})
	}
}

func TestExitErrorKeepsTheChain(t *testing.T) {
	err := Exitf(ExitFailure, "--snapshot-dir: %w", fs.ErrNotExist)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%v does not wrap fs.ErrNotExist", err)
	}
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != ExitFailure {
		t.Fatalf("%v is not an *ExitError with code 1", err)
	}
}
