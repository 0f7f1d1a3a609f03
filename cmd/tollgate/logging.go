package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tollgate-proxy/tollgate/config"
)

// Environment variables that choose the log's format and level before any
// configuration is read. Given, they win over the configuration's [log].
const (
	envLogFormat = "TOLLGATE_LOG_FORMAT"
	envLogLevel  = "TOLLGATE_LOG_LEVEL"
)

// maxHeld bounds the records a replica keeps while it reads its
// configuration; past it they are written in the format known so far.
const maxHeld = 1000

// newLogger returns the process's logger, writing to stderr. format is
// text or json and level debug, info, warn or error; an empty value means
// not given: text and info until the configuration's [log] says otherwise
// (see logSwitch.configure). A value given wins over [log].
//
// Every logger derived from it (With, WithGroup) follows later changes of
// format and level: packages keep the logger they were given.
func newLogger(stderr io.Writer, format, level string) (*slog.Logger, error) {
	sw := &logSwitch{out: &lockedWriter{w: stderr}, level: new(slog.LevelVar)}
	if format != "" {
		f, err := parseLogFormat(format)
		if err != nil {
			return nil, fmt.Errorf("log format: %w", err)
		}
		sw.format, sw.fixedFormat = f, true
	}
	if level != "" {
		l, err := parseLogLevel(level)
		if err != nil {
			return nil, fmt.Errorf("log level: %w", err)
		}
		sw.level.Set(l)
		sw.fixedLevel = true
	}
	sw.root.Store(sw.newRoot(cmp.Or(sw.format, "text")))
	return slog.New(&switchHandler{sw: sw}), nil
}

func parseLogFormat(s string) (string, error) {
	switch f := strings.ToLower(s); f {
	case "text", "json":
		return f, nil
	}
	return "", fmt.Errorf("%q: use text or json", s)
}

func parseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(s)) {
		return l, fmt.Errorf("%q: use debug, info, warn or error", s)
	}
	err := l.UnmarshalText([]byte(s))
	return l, err
}

// logSwitch is the state every handler derived from one newLogger shares:
// the output, the format and level in force, and the records held while
// the configuration that may change them is read.
type logSwitch struct {
	out   io.Writer
	level *slog.LevelVar
	root  atomic.Pointer[rootHandler]
	// format and level given to newLogger; they win over [log].
	format                  string
	fixedFormat, fixedLevel bool

	holding atomic.Bool
	mu      sync.Mutex // guards held; held while replaying
	held    []heldRecord
}

// rootHandler is the handler of one format; a new one replaces it when
// the format changes.
type rootHandler struct{ h slog.Handler }

type heldRecord struct {
	h *switchHandler
	r slog.Record
}

func (sw *logSwitch) newRoot(format string) *rootHandler {
	opts := &slog.HandlerOptions{Level: sw.level, ReplaceAttr: durationString}
	if format == "json" {
		return &rootHandler{slog.NewJSONHandler(sw.out, opts)}
	}
	return &rootHandler{slog.NewTextHandler(sw.out, opts)}
}

// durationString writes every time.Duration as Go writes it ("1.5s",
// "250ms"), in both formats, as the configuration spells durations.
func durationString(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

// logSwitchOf returns the switch behind log, or nil when log does not come
// from newLogger. Its methods accept a nil switch.
func logSwitchOf(log *slog.Logger) *logSwitch {
	if h, ok := log.Handler().(*switchHandler); ok {
		return h.sw
	}
	return nil
}

// hold keeps the records logged from now on until release or configure,
// which write them in the format and level then in force: the lines a
// replica logs before it has read [log] come out as [log] says. It does
// nothing when format and level were both given.
func (sw *logSwitch) hold() {
	if sw == nil || (sw.fixedFormat && sw.fixedLevel) {
		return
	}
	sw.holding.Store(true)
}

// configure applies the configuration's [log] to what newLogger was not
// given, then releases the held records.
func (sw *logSwitch) configure(l *config.Log) {
	if sw == nil {
		return
	}
	if l != nil {
		if f, err := parseLogFormat(l.Format); err == nil && !sw.fixedFormat && f != sw.format {
			sw.format = f
			sw.root.Store(sw.newRoot(f))
		}
		if lv, err := parseLogLevel(l.Level); err == nil && !sw.fixedLevel {
			sw.level.Set(lv)
		}
	}
	sw.release()
}

// release writes the held records and stops holding.
func (sw *logSwitch) release() {
	if sw == nil {
		return
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	held := sw.held
	sw.held = nil
	for _, hr := range held {
		h := hr.h.current()
		if h.Enabled(context.Background(), hr.r.Level) {
			_ = h.Handle(context.Background(), hr.r)
		}
	}
	sw.holding.Store(false)
}

// switchHandler is a handler of a logSwitch: it writes through the
// switch's handler in force, with the attributes and groups it was
// derived with.
type switchHandler struct {
	sw  *logSwitch
	ops []func(slog.Handler) slog.Handler
	// cache is the root in force with ops applied, rebuilt when the root
	// changes.
	cache atomic.Pointer[derived]
}

type derived struct {
	root *rootHandler
	h    slog.Handler
}

func (h *switchHandler) current() slog.Handler {
	root := h.sw.root.Load()
	if d := h.cache.Load(); d != nil && d.root == root {
		return d.h
	}
	out := root.h
	for _, op := range h.ops {
		out = op(out)
	}
	h.cache.Store(&derived{root: root, h: out})
	return out
}

func (h *switchHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.sw.holding.Load() || l >= h.sw.level.Level()
}

func (h *switchHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.sw.holding.Load() {
		sw := h.sw
		sw.mu.Lock()
		if sw.holding.Load() {
			sw.held = append(sw.held, heldRecord{h: h, r: r.Clone()})
			full := len(sw.held) >= maxHeld
			sw.mu.Unlock()
			if full {
				sw.release()
			}
			return nil
		}
		sw.mu.Unlock()
		if r.Level < sw.level.Level() {
			return nil
		}
	}
	return h.current().Handle(ctx, r)
}

func (h *switchHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return h.with(func(in slog.Handler) slog.Handler { return in.WithAttrs(attrs) })
}

func (h *switchHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.with(func(in slog.Handler) slog.Handler { return in.WithGroup(name) })
}

func (h *switchHandler) with(op func(slog.Handler) slog.Handler) *switchHandler {
	return &switchHandler{sw: h.sw, ops: append(slices.Clip(h.ops), op)}
}

// lockedWriter serializes writes: when the format changes, the handlers
// of the old and the new format may write at once.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// logStart writes the line a replica starts with: which build runs, and
// as which node.
func logStart(log *slog.Logger, node string) {
	v, rev := buildCommit()
	log.Info("starting", "version", v, "commit", cmp.Or(rev, "unknown"), "go_version", runtime.Version(), "node", node)
}

// logExit writes the error a command ended with as an error record.
func logExit(log *slog.Logger, command string, code int, err error) {
	log.Error("tollgate "+command+" failed", "err", err, "exit_code", code)
}
