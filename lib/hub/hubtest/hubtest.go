// Package hubtest is a local stand-in for the Hugging Face hub: it serves folders as model
// repositories over the endpoints huggingface_hub and lib/hub use (the revision API, resolve URLs
// with ETag/X-Repo-Commit headers, LFS redirects with X-Linked-Etag/X-Linked-Size, Range requests),
// and can inject faults. Tests and the notebooks' quick mode use it; it never touches the network.
package hubtest

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// File is a file of a served repository.
type File struct {
	Data []byte
	// LFS files (weights) are served through a redirect, with a sha256 ETag.
	LFS bool
}

// Repo is a served repository at one commit.
type Repo struct {
	Files  map[string]*File
	Commit string
}

// Faults injects failures, each consumed when it fires.
type Faults struct {
	// CutAfter closes the connection after this many bytes of the named file (once).
	CutAfter map[string]int
	// Corrupt serves wrong bytes for the named file (always).
	Corrupt map[string]bool
	// Fail500 answers 500 this many times to requests for the named file (or "api" for the API).
	Fail500 map[string]int
	// RequireToken answers 401 to requests without "Authorization: Bearer <token>".
	RequireToken string
}

// Request is a logged request.
type Request struct{ Method, Path, Range string }

// Server is a running fake hub.
type Server struct {
	URL    string
	srv    *http.Server
	mu     sync.Mutex
	repos  map[string]*Repo
	faults Faults
	log    []Request
}

// LoadRepo reads a folder as a repository (weights files — *.safetensors, *.bin — are LFS).
func LoadRepo(dir string) (*Repo, error) {
	r := &Repo{Files: map[string]*File{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	h := sha1.New()
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		lfs := strings.HasSuffix(e.Name(), ".safetensors") || strings.HasSuffix(e.Name(), ".bin")
		r.Files[e.Name()] = &File{Data: data, LFS: lfs}
		fmt.Fprintf(h, "%s %d\n", e.Name(), len(data))
		h.Write(data)
	}
	r.Commit = hex.EncodeToString(h.Sum(nil))
	return r, nil
}

// Start serves the repositories (repo id → repository) on a free loopback port.
func Start(repos map[string]*Repo, faults Faults) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{URL: "http://" + ln.Addr().String(), repos: repos, faults: faults}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }

// Requests returns the requests served so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

// SetFaults replaces the faults.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

func (s *Server) fail500(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.Fail500[key] > 0 {
		s.faults.Fail500[key]--
		return true
	}
	return false
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.log = append(s.log, Request{r.Method, r.URL.Path, r.Header.Get("Range")})
	token := s.faults.RequireToken
	s.mu.Unlock()
	if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
		w.Header().Set("X-Error-Code", "GatedRepo")
		http.Error(w, "Access to this repository is restricted", http.StatusUnauthorized)
		return
	}
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/api/models/"):
		s.serveAPI(w, strings.TrimPrefix(p, "/api/models/"))
	case strings.HasPrefix(p, "/lfs/"):
		s.serveLFS(w, r, strings.TrimPrefix(p, "/lfs/"))
	default:
		s.serveResolve(w, r, strings.TrimPrefix(p, "/"))
	}
}

// splitRepo cuts "org/name/rest" into the repo id and the rest.
func (s *Server) splitRepo(p string) (string, *Repo, string) {
	parts := strings.SplitN(p, "/", 3)
	if len(parts) == 3 {
		if repo, ok := s.repos[parts[0]+"/"+parts[1]]; ok {
			return parts[0] + "/" + parts[1], repo, parts[2]
		}
	}
	return "", nil, ""
}

func (s *Server) serveAPI(w http.ResponseWriter, p string) {
	if s.fail500("api") {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	id, repo, rest := s.splitRepo(p)
	if repo == nil {
		w.Header().Set("X-Error-Code", "RepoNotFound")
		http.Error(w, "Repository not found", http.StatusNotFound)
		return
	}
	rev, ok := strings.CutPrefix(rest, "revision/")
	if !ok || (rev != "main" && rev != repo.Commit) {
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		http.Error(w, "Revision not found", http.StatusNotFound)
		return
	}
	names := make([]string, 0, len(repo.Files))
	for n := range repo.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	type sib struct {
		RFilename string `json:"rfilename"`
	}
	sibs := make([]sib, len(names))
	for i, n := range names {
		sibs[i] = sib{n}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "sha": repo.Commit, "siblings": sibs})
}

func gitBlobSHA(data []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(data))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

func (s *Server) serveResolve(w http.ResponseWriter, r *http.Request, p string) {
	_, repo, rest := s.splitRepo(p)
	if repo == nil {
		w.Header().Set("X-Error-Code", "RepoNotFound")
		http.Error(w, "Repository not found", http.StatusNotFound)
		return
	}
	rev, name, ok := strings.Cut(strings.TrimPrefix(rest, "resolve/"), "/")
	if !ok || !strings.HasPrefix(rest, "resolve/") {
		http.NotFound(w, r)
		return
	}
	if rev != "main" && rev != repo.Commit {
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		http.Error(w, "Revision not found", http.StatusNotFound)
		return
	}
	f, ok := repo.Files[name]
	if !ok {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		http.Error(w, "Entry not found", http.StatusNotFound)
		return
	}
	if s.fail500(name) {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("X-Repo-Commit", repo.Commit)
	if f.LFS {
		sum := sha256.Sum256(f.Data)
		etag := hex.EncodeToString(sum[:])
		w.Header().Set("X-Linked-Etag", `"`+etag+`"`)
		w.Header().Set("X-Linked-Size", fmt.Sprint(len(f.Data)))
		w.Header().Set("ETag", `"`+gitBlobSHA([]byte(etag))+`"`) // the pointer file's
		w.Header().Set("Location", "/lfs/"+etag+"?name="+name)
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+gitBlobSHA(f.Data)+`"`)
	s.serveBytes(w, r, name, f.Data)
}

func (s *Server) serveLFS(w http.ResponseWriter, r *http.Request, etag string) {
	name := r.URL.Query().Get("name")
	for _, repo := range s.repos {
		if f, ok := repo.Files[name]; ok && f.LFS {
			sum := sha256.Sum256(f.Data)
			if hex.EncodeToString(sum[:]) == etag {
				s.serveBytes(w, r, name, f.Data)
				return
			}
		}
	}
	http.NotFound(w, r)
}

// serveBytes answers GET/HEAD with Range support, applying the faults.
func (s *Server) serveBytes(w http.ResponseWriter, r *http.Request, name string, data []byte) {
	s.mu.Lock()
	corrupt := s.faults.Corrupt[name]
	cut, doCut := s.faults.CutAfter[name]
	if doCut && r.Method == http.MethodGet {
		delete(s.faults.CutAfter, name)
	}
	s.mu.Unlock()
	if corrupt {
		data = append([]byte(nil), data...)
		data[0] ^= 0xff
	}
	if doCut && r.Method == http.MethodGet {
		start := 0
		if rg := r.Header.Get("Range"); rg != "" {
			_, _ = fmt.Sscanf(rg, "bytes=%d-", &start)
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(data)-start))
		if start > 0 {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(data)-1, len(data)))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.WriteHeader(http.StatusOK)
		}
		_, _ = w.Write(data[start:min(len(data), start+cut)])
		w.(http.Flusher).Flush()
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			_ = conn.Close()
		}
		return
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}
