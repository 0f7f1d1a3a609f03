package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"

	legolog "github.com/go-acme/lego/v4/log"
	"google.golang.org/grpc/grpclog"
	"k8s.io/klog/v2"
)

// libraryLogs carries what the libraries tollgate links log through their
// own process-wide loggers — client-go's klog, gRPC's grpclog, lego's log
// and the standard log package (and slog's default logger) — to the
// logger of the replica the process runs. Those loggers are globals that
// may be set only before the libraries start: main routes them here once,
// before anything runs (routeLibraryLogs), and serve attaches its logger
// for as long as it runs. With no logger attached, library lines go to
// standard error as text.
//
// It is the one package-level variable of the command: the libraries'
// loggers it stands for are globals already.
var libraryLogs = newLibrarySink(os.Stderr)

// librarySink is a slog.Handler that writes through the attached logger's
// handler, or through a fallback when none is attached.
type librarySink struct {
	fallback slog.Handler
	target   atomic.Pointer[slog.Handler]
}

func newLibrarySink(w io.Writer) *librarySink {
	return &librarySink{fallback: slog.NewTextHandler(w, &slog.HandlerOptions{ReplaceAttr: durationString})}
}

// attach makes library lines go to log until the returned function is
// called; a later attach takes over (a process runs one replica; tests may
// run several, and library lines then go to the newest).
func (s *librarySink) attach(log *slog.Logger) (detach func()) {
	h := log.Handler()
	s.target.Store(&h)
	return func() { s.target.CompareAndSwap(&h, nil) }
}

func (s *librarySink) handler() slog.Handler {
	if h := s.target.Load(); h != nil {
		return *h
	}
	return s.fallback
}

// forward is a handler for the libraries: it follows what is attached to
// s, with the attributes and groups it was derived with.
type forward struct {
	s   *librarySink
	ops []func(slog.Handler) slog.Handler
}

func (f *forward) current() slog.Handler {
	h := f.s.handler()
	for _, op := range f.ops {
		h = op(h)
	}
	return h
}

func (f *forward) Enabled(ctx context.Context, l slog.Level) bool {
	return f.s.handler().Enabled(ctx, l)
}

func (f *forward) Handle(ctx context.Context, r slog.Record) error {
	return f.current().Handle(ctx, r)
}

func (f *forward) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &forward{s: f.s, ops: append(f.ops[:len(f.ops):len(f.ops)], func(h slog.Handler) slog.Handler { return h.WithAttrs(attrs) })}
}

func (f *forward) WithGroup(name string) slog.Handler {
	return &forward{s: f.s, ops: append(f.ops[:len(f.ops):len(f.ops)], func(h slog.Handler) slog.Handler { return h.WithGroup(name) })}
}

// routeLibraryLogs points the libraries' process-wide loggers at s. Call
// it once, first thing in main: the libraries read them without locks.
func routeLibraryLogs(s *librarySink) {
	base := slog.New(&forward{s: s})
	// The standard log package, and slog's default logger, at info.
	slog.SetDefault(base)
	// client-go logs through klog; its verbosity levels map below debug.
	klog.SetSlogLogger(base.With("library", "client-go"))
	// lego writes its progress through its Logger; keep it at debug.
	legolog.Logger = slog.NewLogLogger(base.With("library", "lego").Handler(), slog.LevelDebug)
	// gRPC, below the etcd client.
	grpclog.SetLoggerV2(grpcLogger{base.With("library", "grpc")})
}

// grpcLogger is a grpclog.LoggerV2 that writes to slog. gRPC's info and
// warning lines (connection attempts, address changes) are at debug, as
// gRPC itself keeps them quiet unless asked; its errors stay errors.
type grpcLogger struct{ log *slog.Logger }

func (g grpcLogger) emit(l slog.Level, msg string) {
	g.log.Log(context.Background(), l, strings.TrimSuffix(msg, "\n"))
}

func (g grpcLogger) Info(args ...any)   { g.emit(slog.LevelDebug, fmt.Sprint(args...)) }
func (g grpcLogger) Infoln(args ...any) { g.emit(slog.LevelDebug, fmt.Sprintln(args...)) }
func (g grpcLogger) Infof(format string, args ...any) {
	g.emit(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (g grpcLogger) Warning(args ...any)   { g.emit(slog.LevelDebug, fmt.Sprint(args...)) }
func (g grpcLogger) Warningln(args ...any) { g.emit(slog.LevelDebug, fmt.Sprintln(args...)) }
func (g grpcLogger) Warningf(format string, args ...any) {
	g.emit(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (g grpcLogger) Error(args ...any)   { g.emit(slog.LevelError, fmt.Sprint(args...)) }
func (g grpcLogger) Errorln(args ...any) { g.emit(slog.LevelError, fmt.Sprintln(args...)) }
func (g grpcLogger) Errorf(format string, args ...any) {
	g.emit(slog.LevelError, fmt.Sprintf(format, args...))
}
func (g grpcLogger) Fatal(args ...any)                 { g.fatal(fmt.Sprint(args...)) }
func (g grpcLogger) Fatalln(args ...any)               { g.fatal(fmt.Sprintln(args...)) }
func (g grpcLogger) Fatalf(format string, args ...any) { g.fatal(fmt.Sprintf(format, args...)) }

// V reports whether verbosity level l is on: only level 0, gRPC's own
// default.
func (g grpcLogger) V(l int) bool { return l <= 0 }

func (g grpcLogger) fatal(msg string) {
	g.emit(slog.LevelError, msg)
	os.Exit(exitFailure)
}
