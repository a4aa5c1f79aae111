// Command composecheck loads a Compose file the way `docker compose` does, without a Docker
// engine: compose-spec schema validation, interpolation from one env file (and nothing else, so
// the result does not depend on the caller's shell), YAML anchors and merges, and the
// consistency checks (depends_on targets, volumes, networks). It also fails when the file uses a
// variable that the env file does not define, even one with a ${VAR:-default}: every key the
// deployment reads must be documented in the env file. Build contexts and Dockerfiles must exist.
//
// Usage:
//
//	composecheck [-json] docker-compose.yml .env.example
//
// On success it prints the service names, one a line (with -json: the whole resolved project as
// compose-go writes it, every variable interpolated), and exits 0; on failure it prints the error
// and exits 1 (2 for a usage error).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

func main() {
	asJSON := flag.Bool("json", false, "print the resolved project as JSON instead of the service names")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: composecheck [-json] COMPOSE_FILE ENV_FILE")
		os.Exit(2)
	}
	project, err := check(context.Background(), flag.Arg(0), flag.Arg(1))
	if err != nil {
		fmt.Fprintf(os.Stderr, "composecheck: %v\n", err)
		os.Exit(1)
	}
	if *asJSON {
		out, err := project.MarshalJSON()
		if err != nil {
			fmt.Fprintf(os.Stderr, "composecheck: %v\n", err)
			os.Exit(1)
		}
		fmt.Println(string(out))
		return
	}
	services := project.ServiceNames()
	sort.Strings(services)
	for _, name := range services {
		fmt.Println(name)
	}
}

// check loads composePath with envPath as its only source of variables and returns the resolved
// project.
func check(ctx context.Context, composePath, envPath string) (*types.Project, error) {
	composeAbs, err := filepath.Abs(composePath)
	if err != nil {
		return nil, err
	}
	envAbs, err := filepath.Abs(envPath)
	if err != nil {
		return nil, err
	}

	var mu sync.Mutex
	undefined := map[string]bool{}
	recordUndefined := func(o *loader.Options) {
		if o.Interpolate == nil || o.Interpolate.LookupValue == nil {
			return // the pass that only reads the files; the loading pass interpolates
		}
		lookup := o.Interpolate.LookupValue
		o.Interpolate.LookupValue = func(key string) (string, bool) {
			value, ok := lookup(key)
			if !ok {
				mu.Lock()
				undefined[key] = true
				mu.Unlock()
			}
			return value, ok
		}
	}

	options, err := cli.NewProjectOptions(
		[]string{composeAbs},
		cli.WithWorkingDirectory(filepath.Dir(composeAbs)),
		cli.WithEnvFiles(envAbs),
		cli.WithDotEnv,
		cli.WithInterpolation(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
		cli.WithLoadOptions(recordUndefined),
	)
	if err != nil {
		return nil, err
	}
	project, err := options.LoadProject(ctx)
	if err != nil {
		return nil, err
	}

	if len(undefined) > 0 {
		names := make([]string, 0, len(undefined))
		for name := range undefined {
			names = append(names, name)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("%s uses variables that %s does not define: %s",
			composePath, envPath, strings.Join(names, ", "))
	}
	if err := checkBuilds(project); err != nil {
		return nil, err
	}
	return project, nil
}

// checkBuilds fails when a service's build context or Dockerfile is missing.
func checkBuilds(project *types.Project) error {
	for name, service := range project.Services {
		if service.Build == nil {
			continue
		}
		if info, err := os.Stat(service.Build.Context); err != nil || !info.IsDir() {
			return fmt.Errorf("service %s: build context %s is not a directory", name, service.Build.Context)
		}
		if service.Build.DockerfileInline != "" {
			continue
		}
		dockerfile := service.Build.Dockerfile
		if dockerfile == "" {
			dockerfile = "Dockerfile"
		}
		if !filepath.IsAbs(dockerfile) {
			dockerfile = filepath.Join(service.Build.Context, dockerfile)
		}
		if _, err := os.Stat(dockerfile); err != nil {
			return fmt.Errorf("service %s: Dockerfile %s not found", name, dockerfile)
		}
	}
	return nil
}
