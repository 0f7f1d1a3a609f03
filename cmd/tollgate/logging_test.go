package main

import (
	"context"
	"encoding/json"
	"fmt"

	"os"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-proxy/tollgate/config"
	"github.com/tollgate-proxy/tollgate/internal/testserver"
)

// jsonLines parses every line of out as a JSON object with time, level
// and msg, and fails the test at the first that is not.
func jsonLines(t *testing.T, what, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for line := range strings.Lines(out) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%s: a line is not JSON (%v): %q\nall of it:\n%s", what, err, line, out)
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := rec[k]; !ok {
				t.Fatalf("%s: a line has no %q: %q", what, k, line)
			}
		}
		recs = append(recs, rec)
	}
	if len(recs) == 0 {
		t.Fatalf("%s: nothing logged", what)
	}
	return recs
}

// findRecord returns the first record with msg, or nil.
func findRecord(recs []map[string]any, msg string) map[string]any {
	for _, r := range recs {
		if r["msg"] == msg {
			return r
		}
	}
	return nil
}

// TestLoggerSwitch: loggers derived before [log] is read follow it; the
// records held until then come out in its format and level; durations are
// Go duration strings in both formats; a format or level given wins.
func TestLoggerSwitch(t *testing.T) {
	var buf testserver.Buffer
	log, err := newLogger(&buf, "", "")
	if err != nil {
		t.Fatal(err)
	}
	sw := logSwitchOf(log)
	derived := log.With("component", "c").WithGroup("g")
	sw.hold()
	log.Info("held", "wait", 1500*time.Millisecond)
	derived.Debug("held debug", "k", "v")
	sw.configure(&config.Log{Format: "json", Level: "debug"})
	derived.Debug("after", "k", "v")
	recs := jsonLines(t, "switched", buf.String())
	if len(recs) != 3 {
		t.Fatalf("want 3 records, got:\n%s", buf.String())
	}
	if recs[0]["wait"] != "1.5s" {
		t.Errorf("duration = %v, want \"1.5s\"", recs[0]["wait"])
	}
	if g, _ := recs[2]["g"].(map[string]any); recs[2]["component"] != "c" || g["k"] != "v" {
		t.Errorf("derived record lost its attributes: %v", recs[2])
	}

	var text testserver.Buffer
	log, err = newLogger(&text, "text", "warn")
	if err != nil {
		t.Fatal(err)
	}
	sw = logSwitchOf(log)
	sw.hold()
	log.Info("dropped")
	sw.configure(&config.Log{Format: "json", Level: "debug"})
	log.Warn("kept", "d", 2*time.Minute)
	if got := text.String(); strings.Contains(got, "dropped") || !strings.HasPrefix(got, "time=") || !strings.Contains(got, "d=2m0s") {
		t.Errorf("given text and warn, after [log] json and debug:\n%s", got)
	}

	for _, fl := range [][2]string{{"yaml", ""}, {"", "verbose"}} {
		if _, err := newLogger(&text, fl[0], fl[1]); err == nil || !strings.Contains(err.Error(), "use") {
			t.Errorf("newLogger(%q, %q) = %v, want an error saying what to use", fl[0], fl[1], err)
		}
	}
}

// TestLogFormatFromEnvironment: TOLLGATE_LOG_FORMAT=json makes JSON of
// the lines a replica writes before it has read a configuration, up to
// the error it exits with.
func TestLogFormatFromEnvironment(t *testing.T) {
	t.Setenv(envLogFormat, "json")
	bad := writeFile(t, "bad.toml", invalidConfig)
	code, _, stderr := tollgate(t, "serve", "--config", bad, "--node-id", "env-node")
	if code != exitInvalid {
		t.Fatalf("exit %d, want %d:\n%s", code, exitInvalid, stderr)
	}
	recs := jsonLines(t, "serve with an invalid configuration", stderr)
	if recs[0]["msg"] != "starting" || recs[0]["node"] != "env-node" || recs[0]["version"] == nil {
		t.Errorf("first line: %v", recs[0])
	}
	last := recs[len(recs)-1]
	if last["level"] != "ERROR" || last["exit_code"] != float64(exitInvalid) || !strings.Contains(fmt.Sprint(last["err"]), "missing") {
		t.Errorf("last line: %v", last)
	}

	t.Setenv(envLogFormat, "xml")
	if code, _, stderr := tollgate(t, "serve", "--config", bad); code != exitUsage || !strings.Contains(stderr, envLogFormat) {
		t.Errorf("TOLLGATE_LOG_FORMAT=xml: exit %d:\n%s", code, stderr)
	}
}

// TestLogLevelFromConfig: [log] level applies once the configuration is
// read, to the lines held until then too; TOLLGATE_LOG_LEVEL wins over it.
func TestLogLevelFromConfig(t *testing.T) {
	for _, env := range []string{"", "info"} {
		t.Run("env="+env, func(t *testing.T) {
			t.Setenv(envLogLevel, env)
			api := fmt.Sprintf("127.0.0.1:%d", testserver.FreePorts(t, 1)[0])
			cfg := replicaConfig(t, t.TempDir(), "[log]\nlevel = \"warn\"\nformat = \"json\"\n[lifecycle]\ndrainDelay = \"0s\"\n")
			b, err := os.ReadFile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			doc := strings.Replace(string(b), "[entryPoints.api]\naddress = \"127.0.0.1:0\"", "[entryPoints.api]\naddress = \""+api+"\"", 1)
			if err := os.WriteFile(cfg, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var out, errOut testserver.Buffer
			done := make(chan int, 1)
			go func() { done <- run(ctx, []string{"serve", "--config", cfg}, &out, &errOut) }()
			for deadline := time.Now().Add(time.Minute); getStatus("http://"+api+"/ready") != 200; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					cancel()
					<-done
					t.Fatalf("not ready within a minute:\n%s", errOut.String())
				}
			}
			cancel()
			if code := <-done; code != exitOK {
				t.Fatalf("exit %d:\n%s", code, errOut.String())
			}
			got := errOut.String()
			if env == "" {
				if got != "" {
					recs := jsonLines(t, "serve at warn", got)
					for _, r := range recs {
						if lv := r["level"]; lv != "WARN" && lv != "ERROR" {
							t.Errorf("at [log] level warn, a %v line: %v", lv, r)
						}
					}
				}
				return
			}
			recs := jsonLines(t, "serve at info from the environment", got)
			if findRecord(recs, "configuration loaded") == nil || recs[0]["msg"] != "starting" {
				t.Errorf("TOLLGATE_LOG_LEVEL=info did not win over [log] level warn:\n%s", got)
			}
		})
	}
}
