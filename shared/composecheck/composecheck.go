// Package composecheck keeps docker-compose.yml honest about the binaries it
// runs. No Docker engine is needed: the file is loaded with compose-go, the
// library docker compose itself uses, and compared with the urfave/cli app of
// the binary a service runs.
//
// Verify fails when the file does not parse, when any service has neither an
// image nor a build, when a bind-mounted file or a build context is missing,
// when the service's command names a subcommand or flag the app does not
// have, or when the service sets an environment variable that the app (along
// the command path it runs) never reads: a variable nobody reads is a
// setting that silently does nothing.
//
// Each binary's main_test.go calls Verify for its own service, so renaming a
// flag's variable without updating the compose file fails that binary's tests.
package composecheck

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	ucli "github.com/urfave/cli/v2"
)

// Verify loads the compose file at composePath (every profile active) and
// checks it as a whole and the named service against app. The error lists
// every problem found, each naming the service and, for drift, the variable,
// subcommand or flag.
func Verify(composePath, service string, app *ucli.App) error {
	project, err := Load(composePath, false)
	if err != nil {
		return err
	}
	var problems []string
	problems = append(problems, checkProject(project)...)

	svc, ok := project.Services[service]
	if !ok {
		problems = append(problems, fmt.Sprintf("service %q: not defined in %s (services: %s)",
			service, composePath, strings.Join(serviceNames(project), ", ")))
	} else {
		problems = append(problems, checkService(svc, app)...)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: %d problem(s):\n  %s", composePath, len(problems), strings.Join(problems, "\n  "))
	}
	// The rest of compose's own consistency rules (networks, depends_on, …).
	if _, err := Load(composePath, true); err != nil {
		return err
	}
	return nil
}

// Load parses the compose file at path with every profile active and without
// reading the caller's environment, so interpolation uses the defaults
// written in the file. consistency turns on compose's own cross-reference
// checks, which stop at the first problem.
func Load(path string, consistency bool) (*types.Project, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("compose file %s: %w", path, err)
	}
	opts, err := cli.NewProjectOptions([]string{abs},
		cli.WithName("composecheck"),
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithProfiles([]string{"*"}),
		cli.WithConsistency(consistency),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return nil, fmt.Errorf("compose file %s: %w", path, err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		return nil, fmt.Errorf("compose file %s: %w", path, err)
	}
	return project, nil
}

func serviceNames(p *types.Project) []string {
	names := make([]string, 0, len(p.Services))
	for n := range p.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// checkProject checks what every service needs in order to start at all.
func checkProject(p *types.Project) []string {
	var problems []string
	for _, name := range serviceNames(p) {
		s := p.Services[name]
		if s.Image == "" && s.Build == nil {
			problems = append(problems, fmt.Sprintf("service %q: has neither an image nor a build", name))
		}
		if s.Build != nil {
			if _, err := os.Stat(s.Build.Context); err != nil {
				problems = append(problems, fmt.Sprintf("service %q: build context %s: %v", name, s.Build.Context, err))
			} else if s.Build.DockerfileInline == "" {
				df := s.Build.Dockerfile
				if df == "" {
					df = "Dockerfile"
				}
				if !filepath.IsAbs(df) {
					df = filepath.Join(s.Build.Context, df)
				}
				if _, err := os.Stat(df); err != nil {
					problems = append(problems, fmt.Sprintf("service %q: dockerfile %s: %v", name, df, err))
				}
			}
		}
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				problems = append(problems, fmt.Sprintf("service %q: bind mount source %s (for %s): %v", name, v.Source, v.Target, err))
			}
		}
	}
	return problems
}

// checkService compares one service with the app it runs.
func checkService(s types.ServiceConfig, app *ucli.App) []string {
	var problems []string
	path, cmdProblems := resolveCommand(app, s.Command)
	for _, p := range cmdProblems {
		problems = append(problems, fmt.Sprintf("service %q: command %q: %s", s.Name, strings.Join(s.Command, " "), p))
	}

	// The variables read along the command path the service runs: the app's
	// global flags and each command's on the way. Without a command (or one
	// that did not resolve) every flag anywhere in the app counts.
	var reads map[string]bool
	where := app.Name
	if len(path) > 0 && len(cmdProblems) == 0 {
		reads = envVars(pathFlags(app, path))
		names := []string{app.Name}
		for _, c := range path {
			names = append(names, c.Name)
		}
		where = strings.Join(names, " ")
	} else {
		reads = envVars(allFlags(app.Flags, app.Commands))
		where = app.Name + " (any command)"
	}
	keys := make([]string, 0, len(s.Environment))
	for k := range s.Environment {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !reads[k] {
			problems = append(problems, fmt.Sprintf("service %q: environment variable %s is not read by %s (it reads: %s)",
				s.Name, k, where, strings.Join(sortedKeys(reads), ", ")))
		}
	}
	return problems
}

// resolveCommand walks the service's command through the app's command tree.
// A command may start with the binary's name (one image holds all four
// binaries, so compose's command picks one). It returns the commands on the
// path, and problems with unknown binaries, subcommands or flags.
func resolveCommand(app *ucli.App, command []string) ([]*ucli.Command, []string) {
	if len(command) == 0 {
		return nil, nil
	}
	args := command
	if filepath.Base(args[0]) == app.Name {
		args = args[1:]
	} else if !strings.HasPrefix(args[0], "-") && findCommand(app.Commands, args[0]) == nil {
		return nil, []string{fmt.Sprintf("runs %q, not %s", args[0], app.Name)}
	}
	var (
		path     []*ucli.Command
		problems []string
		cmds     = app.Commands
		flags    = slices.Clone(app.Flags)
	)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "-") {
			name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			f := findFlag(flags, name)
			if f == nil {
				problems = append(problems, fmt.Sprintf("flag --%s is not defined for %s", name, commandName(app, path)))
				continue
			}
			if !hasValue && takesValue(f) {
				i++ // its value
			}
			continue
		}
		c := findCommand(cmds, a)
		if c == nil {
			if len(cmds) > 0 && len(path) == 0 {
				problems = append(problems, fmt.Sprintf("%s has no command %q", app.Name, a))
			}
			break // a positional argument
		}
		path = append(path, c)
		cmds = c.Subcommands
		flags = append(flags, c.Flags...)
	}
	return path, problems
}

func commandName(app *ucli.App, path []*ucli.Command) string {
	names := []string{app.Name}
	for _, c := range path {
		names = append(names, c.Name)
	}
	return strings.Join(names, " ")
}

func findCommand(cmds []*ucli.Command, name string) *ucli.Command {
	for _, c := range cmds {
		if c.Name == name || slices.Contains(c.Aliases, name) {
			return c
		}
	}
	return nil
}

func findFlag(flags []ucli.Flag, name string) ucli.Flag {
	if name == "help" || name == "h" {
		return &ucli.BoolFlag{Name: "help"}
	}
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			return f
		}
	}
	return nil
}

// takesValue reports whether a flag consumes the next argument.
func takesValue(f ucli.Flag) bool {
	if df, ok := f.(ucli.DocGenerationFlag); ok {
		return df.TakesValue()
	}
	return true
}

func pathFlags(app *ucli.App, path []*ucli.Command) []ucli.Flag {
	flags := slices.Clone(app.Flags)
	for _, c := range path {
		flags = append(flags, c.Flags...)
	}
	return flags
}

func allFlags(flags []ucli.Flag, cmds []*ucli.Command) []ucli.Flag {
	out := slices.Clone(flags)
	for _, c := range cmds {
		out = append(out, allFlags(c.Flags, c.Subcommands)...)
	}
	return out
}

// envVars collects the environment variables flags are bound to.
func envVars(flags []ucli.Flag) map[string]bool {
	vars := map[string]bool{}
	for _, f := range flags {
		df, ok := f.(ucli.DocGenerationFlag)
		if !ok {
			continue
		}
		for _, v := range df.GetEnvVars() {
			vars[v] = true
		}
	}
	return vars
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		return []string{"none"}
	}
	return keys
}
