package cliapp

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// Flag names of the secrets the binaries take: the flags below, plus
// FlagControlToken.
const (
	FlagControlToken = "control-token"
	EnvControlToken  = "CONTROL_TOKEN"
	// FileSuffix turns a secret flag's name into the flag naming the file
	// that holds it (--influx-token-file), and FileEnvSuffix its variable
	// (INFLUX_TOKEN_FILE), as Docker and Kubernetes secrets are mounted.
	FileSuffix    = "-file"
	FileEnvSuffix = "_FILE"
	// maxSecretFile bounds a secret file: a secret is a line, not a dump.
	maxSecretFile = 64 << 10
)

// SecretFlags names every flag that carries a secret (a password, a token,
// or a URL or DSN that may hold one). Each one that a command declares gets
// a companion --<name>-file flag read from <ENV>_FILE; the secret is then
// read from that file, its surrounding white space trimmed. Packages that
// add secret flags append their names here in an init function.
var SecretFlags = []string{
	FlagAMQPURL, FlagAMQPMgmtURL, FlagPGDSN, FlagStateDSN, FlagInfluxURL, FlagInfluxToken,
	FlagAWSKeyID, FlagAWSSecret, FlagControlToken, FlagKafkaSASLPassword,
}

// ControlTokenFlag is the token that state-changing HTTP endpoints require
// (Authorization: Bearer <token>); without it they are disabled.
func ControlTokenFlag() cli.Flag {
	return &cli.StringFlag{Name: FlagControlToken, EnvVars: []string{EnvControlToken}, Usage: "token the state-changing HTTP endpoints require as 'Authorization: Bearer <token>' (empty: those endpoints are disabled)", Category: "Control"}
}

// addSecretFiles gives every command (recursively) a --<name>-file flag for
// each secret flag it declares, and a Before that reads those files.
func addSecretFiles(cmds []*cli.Command) {
	for _, cmd := range cmds {
		addSecretFiles(cmd.Subcommands)
		var secrets []string
		for _, f := range cmd.Flags {
			sf, ok := f.(*cli.StringFlag)
			if !ok || !slices.Contains(SecretFlags, sf.Name) {
				continue
			}
			secrets = append(secrets, sf.Name)
			var envs []string
			for _, e := range sf.EnvVars {
				envs = append(envs, e+FileEnvSuffix)
			}
			cmd.Flags = append(cmd.Flags, &cli.StringFlag{
				Name: sf.Name + FileSuffix, EnvVars: envs, Category: sf.Category,
				Usage: "read --" + sf.Name + " from this file (white space around it trimmed), e.g. a mounted Docker or Kubernetes secret",
			})
		}
		if len(secrets) == 0 {
			continue
		}
		before := cmd.Before
		cmd.Before = func(c *cli.Context) error {
			if err := readSecretFiles(c, secrets); err != nil {
				return Exit(err, ExitFailure)
			}
			if before != nil {
				return before(c)
			}
			return nil
		}
	}
}

// readSecretFiles sets each secret flag whose file flag is given from the
// file's content. Giving both the secret and its file is refused: which
// one wins would be a guess.
func readSecretFiles(c *cli.Context, secrets []string) error {
	for _, name := range secrets {
		path := c.String(name + FileSuffix)
		if path == "" {
			continue
		}
		if c.IsSet(name) && c.String(name) != "" { // an empty variable (services.sh env exports INFLUX_TOKEN=) is not a second source
			return fmt.Errorf("--%s and --%s%s are both set: give the secret one way", name, name, FileSuffix)
		}
		v, err := ReadSecretFile(path)
		if err != nil {
			return fmt.Errorf("--%s%s: %w", name, FileSuffix, err)
		}
		if err := c.Set(name, v); err != nil {
			return fmt.Errorf("--%s%s: %w", name, FileSuffix, err)
		}
	}
	return nil
}

// ReadSecretFile reads a secret from path: at most 64 KiB, white space
// around it trimmed, not empty. Errors name the file, never its content.
func ReadSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() && st.Mode()&os.ModeNamedPipe == 0 {
		return "", fmt.Errorf("read secret %s: not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("read secret %s: %w", path, err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("read secret %s: larger than %d KiB", path, maxSecretFile>>10)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", errors.New("read secret " + path + ": empty")
	}
	return v, nil
}
