package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// interrupted is the cause of a context ended by SIGINT or SIGTERM.
type interrupted struct{ sig os.Signal }

func (e interrupted) Error() string { return "interrupted by " + e.sig.String() }

// exitCode is the shell's code for a process ended by the signal: 128+n.
func (e interrupted) exitCode() int {
	if s, ok := e.sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return exitFailure
}

// notifyInterrupt returns a context that ends, with an interrupted cause,
// at the first SIGINT or SIGTERM, so the command stops cleanly. A second
// signal calls exitNow with the signal's exit code: the user does not
// want to wait for the clean stop. stop ends the watch.
func notifyInterrupt(parent context.Context, errOut io.Writer, exitNow func(code int)) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		var sig os.Signal
		select {
		case sig = <-sigs:
		case <-done:
			return
		}
		fmt.Fprintf(errOut, "\n%s: stopping; interrupt again to exit at once\n", sig)
		cancel(interrupted{sig})
		select {
		case sig = <-sigs:
			fmt.Fprintf(errOut, "%s: exiting at once\n", sig)
			exitNow(interrupted{sig}.exitCode())
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(nil)
	}
}
