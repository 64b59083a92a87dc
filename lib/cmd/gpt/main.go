// Command gpt runs the steps of the tutorial from a terminal: the same library calls the notebooks
// make. Run `gpt --help` for the list of subcommands and `gpt SUBCOMMAND --help` for each one's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand of gpt.
type command struct {
	name    string
	summary string
	// run executes the subcommand with its arguments (after the name), writing its results to stdout.
	run func(ctx context.Context, args []string, stdout io.Writer) error
}

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

// errUsage marks a command-line mistake: exit status 2 instead of 1.
var errUsage = errors.New("usage")

func usage(w io.Writer) {
	fmt.Fprintf(w, "gpt — the GPT-2 tutorial (lib.ru → tokenizer → GPT-2 → ruGPT-3) in Go on GoMLX.\n\n")
	fmt.Fprintf(w, "Usage: gpt SUBCOMMAND [flags] [args]\n\nSubcommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nRun `gpt SUBCOMMAND --help` for the flags of each.\n")
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "gpt: unknown subcommand %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := c.run(ctx, args[1:], stdout)
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "gpt %s: %v\n", c.name, err)
		return 2
	default:
		fmt.Fprintf(stderr, "gpt %s: %v\n", c.name, err)
		return 1
	}
}

// newFlags returns a flag set for a subcommand, with a usage line.
func newFlags(name, args, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("gpt "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: gpt %s %s\n\n%s\n\nFlags:\n", name, args, strings.TrimSpace(about))
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags; a parse error becomes errUsage (flag already printed it).
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

// atLeast names an integer flag below min (nil when it is not).
func atLeast(flag string, v, min int) error {
	if v < min {
		return fmt.Errorf("--%s %d: want a whole number ≥ %d", flag, v, min)
	}
	return nil
}

// badFlags is one usage error reporting every flag error given (nil when all are nil).
func badFlags(errs ...error) error {
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return nil
}

// stringList collects a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
