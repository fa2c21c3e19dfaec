// Command argocd-health runs every health_test.yaml case under a resource_customizations
// tree through Argo CD's own health-Lua code (util/lua of the argo-cd module), the way the
// application controller runs a script from argocd-cm: the sandboxed VM (no Lua standard
// library beyond base, table and a safe os), the object as the global `obj`.
//
// Upstream checks its built-in scripts with a Go test over the same file layout; this is
// a program instead so that pytest can run it against our tree. One JSON line per case on
// stdout; the exit code is 1 when any case differs or fails.
//
//	argocd-health docs/argocd/resource_customizations
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/argoproj/argo-cd/gitops-engine/v3/pkg/health"
	appv1 "github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/util/lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

type testFile struct {
	Tests []struct {
		InputPath    string              `json:"inputPath"`
		HealthStatus health.HealthStatus `json:"healthStatus"`
	} `json:"tests"`
}

type result struct {
	Script string               `json:"script"`
	Input  string               `json:"input"`
	Want   health.HealthStatus  `json:"want"`
	Got    *health.HealthStatus `json:"got"`
	Error  string               `json:"error,omitempty"`
	Pass   bool                 `json:"pass"`
}

func readObject(path string) (*unstructured.Unstructured, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	obj := map[string]any{}
	if err := yaml.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &unstructured.Unstructured{Object: obj}, nil
}

// evaluate runs one case. The script is registered under the object's own group/kind, as
// argocd-cm's resource.customizations.health.<group>_<kind> key would: an object whose kind
// does not match the directory it sits in gets no health at all and fails the case.
func evaluate(root, dir, script string, input string) (*health.HealthStatus, error) {
	obj, err := readObject(filepath.Join(dir, input))
	if err != nil {
		return nil, err
	}
	rel, err := filepath.Rel(root, dir)
	if err != nil {
		return nil, err
	}
	overrides := lua.ResourceHealthOverrides{
		filepath.ToSlash(rel): appv1.ResourceOverride{HealthLua: script},
	}
	got, err := overrides.GetResourceHealth(obj)
	if err == nil && got == nil {
		err = fmt.Errorf("no health script for %s (directory %s)", lua.GetConfigMapKey(obj.GroupVersionKind()), rel)
	}
	return got, err
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: argocd-health <resource_customizations dir>")
		os.Exit(2)
	}
	root := os.Args[1]
	failed, cases := false, 0
	out := json.NewEncoder(os.Stdout)
	err := filepath.WalkDir(root, func(path string, entry os.DirEntry, err error) error {
		if err != nil || entry.IsDir() || entry.Name() != "health.lua" {
			return err
		}
		dir := filepath.Dir(path)
		script, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		raw, err := os.ReadFile(filepath.Join(dir, "health_test.yaml"))
		if err != nil {
			return err
		}
		var tests testFile
		if err := yaml.Unmarshal(raw, &tests); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(dir, "health_test.yaml"), err)
		}
		rel, _ := filepath.Rel(root, path)
		for _, test := range tests.Tests {
			cases++
			r := result{Script: filepath.ToSlash(rel), Input: test.InputPath, Want: test.HealthStatus}
			got, err := evaluate(root, dir, string(script), test.InputPath)
			r.Got = got
			if err != nil {
				r.Error = err.Error()
			}
			r.Pass = err == nil && got != nil && *got == test.HealthStatus
			failed = failed || !r.Pass
			if err := out.Encode(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if cases == 0 {
		fmt.Fprintln(os.Stderr, "no health_test.yaml cases under", root)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}
