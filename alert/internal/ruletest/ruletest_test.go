package ruletest

import (
	"path/filepath"
	"testing"
)

// Every rules test file shipped with the default rules passes.
func TestShippedRuleTests(t *testing.T) {
	files, err := filepath.Glob("../../rules/tests/*.test.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule test files found: %v", err)
	}
	for _, f := range files {
		res, err := RunFile(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, r := range res {
			t.Run(filepath.Base(f)+"/"+r.Test, func(t *testing.T) {
				for _, msg := range r.Failures {
					t.Error(msg)
				}
			})
		}
	}
}
