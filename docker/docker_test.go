// Package docker holds the image's Dockerfile and build steps; this test checks that `steps.sh check`
// catches each way a Dockerfile can break DataSphere's requirements or the image's own rules.
package docker

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A copy of the Dockerfile, steps.sh and .dockerignore, changed by one edit, must fail the check
// with the reason named; the unchanged copy must pass. DataSphere's requirements are those of
// yandex-cloud/docs: datasphere/concepts/docker.md (Python 3.8-3.11, pip, user jupyter with uid
// 1000) and troubleshooting/datasphere/known-issues/tests-failure-error.md (an image that launches a
// service fails the start test).
func TestCheckCatchesBrokenCopies(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	files := map[string]string{}
	for _, name := range []string{"Dockerfile", "steps.sh", "../.dockerignore"} {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(data)
	}
	type edit struct {
		file, old, new string // new replaces old (which must occur); old "" removes the file
	}
	cases := []struct {
		name  string
		edits []edit
		want  string // in the check's error
	}{
		{"unchanged", nil, ""},
		{"Python 3.12 base", []edit{{"Dockerfile", "FROM debian:bookworm-slim AS image", "FROM ubuntu:24.04 AS image"}}, "ships Python 3.12"},
		{"Python 3.13 base", []edit{{"Dockerfile", "FROM debian:bookworm-slim AS image", "FROM python:3.13-slim AS image"}}, "ships Python 3.13"},
		{"unknown base", []edit{{"Dockerfile", "FROM debian:bookworm-slim AS image", "FROM alpine:3.20 AS image"}}, "Python version is unknown"},
		{"service CMD for DataSphere", []edit{{"Dockerfile", "USER root\n", "USER root\nCMD [\"jupyter\", \"lab\"]\n"}}, "starts a service"},
		{"inherited ENTRYPOINT", []edit{{"Dockerfile", "RUN tutorial-steps warm\n", "RUN tutorial-steps warm\nENTRYPOINT [\"tini\", \"--\"]\n"}}, "starts a service"},
		{"DataSphere stage not last", []edit{{"Dockerfile", "USER root\n", "USER root\nFROM image AS extra\n"}}, "last stage must be 'datasphere'"},
		{"no jupyter user step", []edit{{"Dockerfile", "RUN tutorial-steps user\n", ""}}, "does not run the 'user' step"},
		{"other uid", []edit{{"steps.sh", "JUPYTER_UID=1000", "JUPYTER_UID=1001"}}, "uid 1000"},
		{"local runs as root", []edit{{"Dockerfile", "USER jupyter\n", ""}}, "runs as root"},
		{"local without tini", []edit{{"Dockerfile", "ENTRYPOINT [\"tini\", \"--\"]\n", ""}}, "ENTRYPOINT must be"},
		{"repository under home", []edit{{"Dockerfile", ". /opt/tutorial", ". /home/jupyter/tutorial"}}, "nothing may be installed under /home"},
		{"GOPATH under home", []edit{{"Dockerfile", "GOPATH=/opt/go ", "GOPATH=/home/jupyter/go "}}, "points under /home"},
		{"kernel under home", []edit{{"steps.sh", "KERNEL_DATA_DIR=/usr/local/share/jupyter", "KERNEL_DATA_DIR=/home/jupyter/.local/share/jupyter"}}, "belong outside /home"},
		{"GOCACHE unset", []edit{{"Dockerfile", "GOCACHE=/opt/go/cache \\\n", ""}}, "ENV GOCACHE is not set"},
		{"no .dockerignore", []edit{{"../.dockerignore", "", ""}}, "no .dockerignore"},
		{".git not ignored", []edit{{"../.dockerignore", "\n.git\n", "\n"}}, "does not leave out .git"},
		{"RUN outside steps.sh", []edit{{"Dockerfile", "RUN tutorial-steps python\n", "RUN pip install jupyterlab\n"}}, "not a call of steps.sh"},
		{"unknown step", []edit{{"Dockerfile", "RUN tutorial-steps python\n", "RUN tutorial-steps pythn\n"}}, "unknown step 'pythn'"},
		{"unpinned JAX", []edit{{"steps.sh", "JAX_VERSION=0.11.2", "JAX_VERSION=latest"}}, "not an exact version"},
		{"ARG CUDA out of scope", []edit{{"Dockerfile", "AS image\nARG CUDA\n", "AS image\n"}}, "'ARG CUDA' must be declared"},
		{"invalid CUDA default", []edit{{"Dockerfile", "ARG CUDA=12\n", "ARG CUDA=11\n"}}, "default is not a valid version"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			content := map[string]string{}
			for k, v := range files {
				content[k] = v
			}
			for _, e := range c.edits {
				if e.old == "" {
					delete(content, e.file)
					continue
				}
				if !strings.Contains(content[e.file], e.old) {
					t.Fatalf("%s does not contain %q: update the test", e.file, e.old)
				}
				content[e.file] = strings.Replace(content[e.file], e.old, e.new, 1)
			}
			for name, data := range content {
				path := filepath.Join(dir, "docker", name)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(data), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("bash", filepath.Join(dir, "docker", "steps.sh"), "check", filepath.Join(dir, "docker", "Dockerfile"))
			cmd.Env = append(os.Environ(), "CUDA=")
			out, err := cmd.CombinedOutput()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("the unchanged copy fails the check: %v\n%s", err, out)
			case c.want == "" && !strings.Contains(string(out), "passes"):
				t.Fatalf("the check said:\n%s", out)
			case c.want != "" && err == nil:
				t.Fatalf("the check passed a Dockerfile with %s:\n%s", c.name, out)
			case c.want != "" && !strings.Contains(string(out), c.want):
				t.Fatalf("the check failed, but not for %s (want %q):\n%s", c.name, c.want, out)
			}
		})
	}
}
