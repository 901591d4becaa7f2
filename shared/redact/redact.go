// Package redact hides secrets in the strings a program prints: passwords in
// URLs and DSNs (parseable or not), password/token/secret parameters of
// key=value DSNs and query strings. Every path that can carry a URL or a DSN
// to a log, an error message, a database row or an HTTP answer goes through
// it, so a secret given in a connection string never leaves the process.
package redact

import (
	"errors"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces every hidden secret.
const Mask = "xxxxx"

// unparseable stands for a URL that did not parse: its raw text is never
// echoed, since the parser cannot say where its password is.
const unparseable = "(unparseable URL)"

// secretKey matches the names of parameters that carry secrets.
var secretKey = `(?i)(?:password|passwd|pass|pwd|secret|token|sslpassword|access[_-]?key[_-]?id|secret[_-]?access[_-]?key|api[_-]?key|auth)`

var (
	// userinfo matches "scheme://user:password@" anywhere in free text; the
	// password runs to the last '@' before the host part so that an
	// unescaped '@' or ':' inside it is hidden too.
	userinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'"]*:)[^\s'"]*@`)
	// keyValue matches password=value in a key=value DSN or a query string,
	// quoted ('...') or bare.
	keyValue = regexp.MustCompile(`(\b` + secretKey + `\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&;'"]+)`)
)

// URL returns raw with its secrets hidden: the password of the userinfo,
// and secret query parameters (password=, token=, ...). A key=value DSN
// ("host=... password=...") has its password hidden too. A string that
// looks like a URL but does not parse is never returned as is: only its
// scheme survives.
func URL(raw string) string {
	if !strings.Contains(raw, "://") {
		return String(raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.Index(raw, "://"); i > 0 && !strings.ContainsAny(raw[:i], " \t\n@:/") {
			return raw[:i] + "://" + unparseable
		}
		return unparseable
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), Mask)
		}
	}
	if u.RawQuery != "" {
		u.RawQuery = keyValue.ReplaceAllString(u.RawQuery, "${1}"+Mask)
	}
	return u.String()
}

// String hides every secret it recognises in free text: URL userinfo
// passwords and password=/token=/secret= parameters.
func String(s string) string {
	if s == "" {
		return s
	}
	s = userinfo.ReplaceAllString(s, "${1}"+Mask+"@")
	return keyValue.ReplaceAllString(s, "${1}"+Mask)
}

// Error returns err with its message redacted by String; errors.Is and
// errors.As still see the original chain. A nil err stays nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := String(msg); clean != msg {
		return &redacted{msg: clean, err: err}
	}
	return err
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }

// ReplaceAttr is a slog.HandlerOptions.ReplaceAttr that redacts every string
// and error attribute, the message included, so no log line carries a
// secret whichever code path logged it.
func ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); s != String(s) {
			a.Value = slog.StringValue(String(s))
		}
	case slog.KindAny:
		switch v := a.Value.Any().(type) {
		case error:
			a.Value = slog.StringValue(String(v.Error()))
		case interface{ String() string }:
			a.Value = slog.StringValue(String(v.String()))
		case []string:
			out := make([]string, len(v))
			for i, s := range v {
				out[i] = String(s)
			}
			a.Value = slog.AnyValue(out)
		}
	}
	return a
}

// URLError returns an error for a URL that failed to parse without the
// parser's details when they quote the URL: net/url quotes the raw URL and
// pieces of it ("invalid port \":pa\" after host"), which may be the
// password itself. Other errors are redacted as by Error.
func URLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return errUnparseable
	}
	return Error(err)
}

var errUnparseable = errors.New("malformed URL (details withheld: they would quote the password)")
