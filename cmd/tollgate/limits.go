package main

import (
	"log/slog"
	"syscall"
)

// raiseOpenFilesLimit lifts the soft limit on open files to the hard
// limit: every client and backend connection is a file.
func raiseOpenFilesLimit(log *slog.Logger) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("cannot read the open files limit", "err", err)
		return
	}
	soft := lim.Cur
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			log.Warn("cannot raise the open files limit", "soft", soft, "hard", lim.Max, "err", err)
			return
		}
	}
	log.Info("open files limit", "soft_before", soft, "soft", lim.Cur, "hard", lim.Max)
}
