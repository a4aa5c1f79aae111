// Command ferretdb-local runs FerretDB v1 (MongoDB wire protocol) on its SQLite backend.
//
// It embeds FerretDB's public `ferretdb` package instead of `go install`-ing the upstream
// binary, which panics at start when built from the module (its version file is missing).
// Used by the btc-pipeline local stack (`make demo`, `make up`, `make test`).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	addr := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	dataDir := flag.String("data-dir", "state/ferretdb", "directory holding the SQLite databases")
	logLevel := flag.String("log-level", "warn", "log level: debug, info, warn, error")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb-local: bad -log-level %q: %v\n", *logLevel, err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	abs, err := filepath.Abs(*dataDir)
	if err != nil {
		logger.Error("cannot resolve data dir", "dir", *dataDir, "err", err)
		os.Exit(1)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		logger.Error("cannot create data dir", "dir", abs, "err", err)
		os.Exit(1)
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *addr},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
	})
	if err != nil {
		logger.Error("cannot configure FerretDB", "err", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	logger.Warn("FerretDB listening", "addr", *addr, "uri", f.MongoDBURI(), "data_dir", abs)
	if err := f.Run(ctx); err != nil {
		logger.Error("FerretDB stopped with error", "err", err)
		os.Exit(1)
	}
}
