// Package hubtest is a local replica of the Hugging Face hub, built to answer as huggingface.co
// answers today, so that tests and the notebooks' quick mode exercise what breaks real clients:
//
//   - Small (git) files: HEAD/GET /{repo}/resolve/{rev}/{file} answers 307 with a relative
//     Location /api/resolve-cache/models/{repo}/{commit}/{file}?…&etag=…, X-Repo-Commit,
//     X-Linked-Etag (the git blob SHA-1) and a Content-Length that is the redirect body's, not the
//     file's (no X-Linked-Size). The target answers 200 with ETag, X-Repo-Commit and the bytes.
//     (Live traces: swift-transformers PR 209; huggingface_hub issue 4698 and PR 4699; hf-hub PR 191.)
//   - LFS/Xet files (weights): 302 with an absolute Location on another host — the storage
//     ("xet-bridge") server, CDNURL — carrying X-Linked-Etag (sha256), X-Linked-Size,
//     X-Repo-Commit and X-Xet-Hash. The storage server answers with the Xet hash as its ETag (not
//     the sha256: a client that names blobs after the last response's ETag gets it wrong) and
//     refuses any request that carries an Authorization header, as a presigned S3 URL does
//     (huggingface_hub PR 4739: the token must not leave the hub).
//   - Renamed repositories: a relative 307 to the new name with no metadata headers, for resolve
//     URLs and for the API (gpt2 → openai-community/gpt2).
//   - Errors: a missing repository is 401 with X-Error-Code RepoNotFound when asked anonymously and
//     404 otherwise; a gated one is 401 (anonymous) or 403 (a token without access) with
//     X-Error-Code GatedRepo and an X-Error-Message; a bad revision 404 RevisionNotFound; a
//     missing file 404 EntryNotFound with X-Repo-Commit. 429 carries RateLimit ("resolvers" or
//     "api" group, t = seconds to the window's end), RateLimit-Policy and Retry-After
//     (huggingface_hub PR 3570 and issue 3553).
//
// Faults can be injected (cut connections, corrupt bytes, 500s, 429s, stalls, latency). It never
// touches the network: both servers listen on loopback ports.
package hubtest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// File is a file of a served repository.
type File struct {
	Data []byte
	// LFS files (weights) are served through a redirect to the storage host, with a sha256 ETag.
	LFS bool
}

// Repo is a served repository at one commit.
type Repo struct {
	Files  map[string]*File
	Commit string
	// Gated repositories answer only requests that carry one of Tokens.
	Gated  bool
	Tokens []string
}

// Faults injects failures. Counted faults are consumed as they fire.
type Faults struct {
	// CutAfter closes the connection after this many bytes of the named file's content, once or
	// CutRepeat times.
	CutAfter  map[string]int
	CutRepeat int
	// Corrupt serves wrong bytes for the named file (always).
	Corrupt map[string]bool
	// Fail500 answers 500 this many times to requests for the named file (or "api" for the API).
	Fail500 map[string]int
	// RateLimit answers 429 this many times to requests for the named file (or "api").
	RateLimit map[string]int
	// RateLimitReset is the t= of the RateLimit header, in seconds (default 1).
	RateLimitReset int
	// Stall sends the named file's first half, then sends nothing for this long (once).
	Stall map[string]time.Duration
	// Latency delays every answer (to make concurrent clients overlap).
	Latency time.Duration
}

// Request is a logged request.
type Request struct {
	// Host is "hub" or "storage".
	Host, Method, Path, Range string
	// Auth reports an Authorization header.
	Auth bool
}

// Server is a running replica: the hub at URL and its storage host at CDNURL.
type Server struct {
	URL    string
	CDNURL string
	hub    *http.Server
	cdn    *http.Server
	secret []byte

	mu      sync.Mutex
	repos   map[string]*Repo
	renamed map[string]string
	faults  Faults
	log     []Request
}

// LoadRepo reads a folder as a repository (weights files — *.safetensors, *.bin — are LFS).
func LoadRepo(dir string) (*Repo, error) {
	r := &Repo{Files: map[string]*File{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
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
	}
	r.Commit = CommitOf(r.Files)
	return r, nil
}

// CommitOf is a stable 40-hex commit id for a set of files.
func CommitOf(files map[string]*File) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha1.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s %d\n", n, len(files[n].Data))
		h.Write(files[n].Data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Start serves the repositories (repo id → repository) on two free loopback ports.
func Start(repos map[string]*Repo, faults Faults) (*Server, error) {
	hubLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cdnLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = hubLn.Close()
		return nil, err
	}
	// The storage host has another host name than the hub (localhost, not 127.0.0.1), as
	// cas-bridge.xethub.hf.co has from huggingface.co: huggingface_hub ≥ 1.30 follows a resolve
	// redirect to the hub's own host name whatever the port (PR 4739; PR 4942 would compare ports),
	// so a storage host told apart only by its port would make Python read the file's metadata
	// from the storage answer, where no X-Repo-Commit is (measured with 1.x on the device machine).
	_, cdnPort, _ := net.SplitHostPort(cdnLn.Addr().String())
	s := &Server{URL: "http://" + hubLn.Addr().String(), CDNURL: "http://localhost:" + cdnPort,
		repos: repos, renamed: map[string]string{}, faults: faults, secret: []byte(time.Now().String())}
	s.hub = &http.Server{Handler: http.HandlerFunc(s.serveHub), ReadHeaderTimeout: 10 * time.Second}
	s.cdn = &http.Server{Handler: http.HandlerFunc(s.serveStorage), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.hub.Serve(hubLn) }()
	go func() { _ = s.cdn.Serve(cdnLn) }()
	return s, nil
}

// Close stops both servers.
func (s *Server) Close() error {
	err := s.hub.Close()
	if e := s.cdn.Close(); err == nil {
		err = e
	}
	return err
}

// Rename makes oldID answer with a redirect to newID (a served repository).
func (s *Server) Rename(oldID, newID string) {
	s.mu.Lock()
	s.renamed[oldID] = newID
	s.mu.Unlock()
}

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

// take consumes one count of a counted fault.
func (s *Server) take(m map[string]int, key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m[key] > 0 {
		m[key]--
		return true
	}
	return false
}

func (s *Server) record(host string, r *http.Request) Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, Request{host, r.Method, r.URL.Path, r.Header.Get("Range"), r.Header.Get("Authorization") != ""})
	return s.faults
}

func hubError(w http.ResponseWriter, status int, code, msg, commit string) {
	if code != "" {
		w.Header().Set("X-Error-Code", code)
	}
	w.Header().Set("X-Error-Message", msg)
	if commit != "" {
		w.Header().Set("X-Repo-Commit", commit)
	}
	http.Error(w, msg, status)
}

// repoFor finds the served repository a path starts with ("org/name/rest" or "name/rest"), or a
// renamed one (then renamedTo is the new id).
func (s *Server) repoFor(p string) (id string, repo *Repo, rest, renamedTo string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	parts := strings.SplitN(p, "/", 3)
	for _, n := range []int{2, 1} {
		if len(parts) < n {
			continue
		}
		cand := strings.Join(parts[:n], "/")
		tail := strings.Join(parts[n:], "/")
		if r, ok := s.repos[cand]; ok {
			return cand, r, tail, ""
		}
		if to, ok := s.renamed[cand]; ok {
			return cand, nil, tail, to
		}
	}
	return "", nil, "", ""
}

// authorize answers 401/403 for a gated repository without a granted token.
func authorize(w http.ResponseWriter, r *http.Request, id string, repo *Repo) bool {
	if !repo.Gated {
		return true
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	for _, t := range repo.Tokens {
		if tok != "" && tok == t {
			return true
		}
	}
	if tok == "" {
		hubError(w, http.StatusUnauthorized, "GatedRepo", fmt.Sprintf("Access to model %s is restricted. You must have access to it and be authenticated to access it. Please log in.", id), "")
	} else {
		hubError(w, http.StatusForbidden, "GatedRepo", fmt.Sprintf("Access to model %s is restricted and you are not in the authorized list. Visit https://huggingface.co/%s to ask for access.", id, id), "")
	}
	return false
}

func missingRepo(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") == "" {
		hubError(w, http.StatusUnauthorized, "RepoNotFound", "Repository not found", "")
		return
	}
	hubError(w, http.StatusNotFound, "RepoNotFound", "Repository not found", "")
}

// rateLimited answers 429 as the hub does when the group's window is used up.
func (s *Server) rateLimited(w http.ResponseWriter, f Faults, key, group string) bool {
	if !s.take(f.RateLimit, key) {
		return false
	}
	t := f.RateLimitReset
	if t <= 0 {
		t = 1
	}
	w.Header().Set("RateLimit", fmt.Sprintf("%q;r=0;t=%d", group, t))
	w.Header().Set("RateLimit-Policy", fmt.Sprintf("\"fixed window\";%q;q=3000;w=300", group))
	w.Header().Set("Retry-After", strconv.Itoa(t))
	hubError(w, http.StatusTooManyRequests, "", "You have been rate-limited; you can retry this action in about 5 minutes. If you're a new user, your limits will raise progressively over time.", "")
	return true
}

func (s *Server) serveHub(w http.ResponseWriter, r *http.Request) {
	f := s.record("hub", r)
	if f.Latency > 0 {
		time.Sleep(f.Latency)
	}
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/api/models/"):
		s.serveAPI(w, r, f, strings.TrimPrefix(p, "/api/models/"))
	case strings.HasPrefix(p, "/api/resolve-cache/models/"):
		s.serveResolveCache(w, r, f, strings.TrimPrefix(p, "/api/resolve-cache/models/"))
	default:
		s.serveResolve(w, r, f, strings.TrimPrefix(p, "/"))
	}
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, f Faults, p string) {
	if s.take(f.Fail500, "api") {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if s.rateLimited(w, f, "api", "api") {
		return
	}
	id, repo, rest, to := s.repoFor(p)
	if to != "" {
		target := "/api/models/" + to
		if rest != "" {
			target += "/" + rest
		}
		http.Redirect(w, r, target, http.StatusTemporaryRedirect)
		return
	}
	if repo == nil {
		missingRepo(w, r)
		return
	}
	rev := "main"
	if rest != "" {
		var ok bool
		if rev, ok = strings.CutPrefix(rest, "revision/"); !ok {
			http.NotFound(w, r)
			return
		}
	}
	if rev != "main" && rev != repo.Commit {
		hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev, "")
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
	gated := any(false)
	if repo.Gated {
		gated = "manual" // the metadata of a gated repository stays public
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(map[string]any{"_id": repo.Commit[:24], "id": id, "modelId": id, "sha": repo.Commit,
		"private": false, "gated": gated, "disabled": false, "siblings": sibs})
}

// GitBlobSHA is a regular file's ETag: its git blob SHA-1.
func GitBlobSHA(data []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(data))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

// SHA256 is an LFS file's ETag.
func SHA256(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// xetHash stands in for the Xet Merkle hash: a value that differs from the sha256.
func xetHash(data []byte) string {
	h := sha256.New()
	h.Write([]byte("xet\x00"))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

// redirect writes a 3xx whose Content-Length is its own body's, as the hub's does.
func redirect(w http.ResponseWriter, r *http.Request, status int, location string) {
	body := fmt.Sprintf("%s. Redirecting to %s", http.StatusText(status), location)
	w.Header().Set("Location", location)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(body))
	}
}

func (s *Server) serveResolve(w http.ResponseWriter, r *http.Request, f Faults, p string) {
	id, repo, rest, to := s.repoFor(p)
	if to != "" {
		redirect(w, r, http.StatusTemporaryRedirect, "/"+to+"/"+rest)
		return
	}
	if repo == nil {
		missingRepo(w, r)
		return
	}
	tail, ok := strings.CutPrefix(rest, "resolve/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	rev, name, ok := strings.Cut(tail, "/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if !authorize(w, r, id, repo) {
		return
	}
	if rev != "main" && rev != repo.Commit {
		hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev, "")
		return
	}
	file, ok := repo.Files[name]
	if !ok {
		hubError(w, http.StatusNotFound, "EntryNotFound", "Entry not found", repo.Commit)
		return
	}
	if s.take(f.Fail500, name) {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if s.rateLimited(w, f, name, "resolvers") {
		return
	}
	w.Header().Set("X-Repo-Commit", repo.Commit)
	w.Header().Set("Accept-Ranges", "bytes")
	if file.LFS {
		sha := SHA256(file.Data)
		xet := xetHash(file.Data)
		w.Header().Set("X-Linked-Etag", `"`+sha+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(file.Data)))
		w.Header().Set("X-Xet-Hash", xet)
		w.Header().Set("Cache-Control", "no-store")
		redirect(w, r, http.StatusFound, s.signedURL(xet))
		return
	}
	etag := GitBlobSHA(file.Data)
	w.Header().Set("X-Linked-Etag", `"`+etag+`"`)
	q := url.Values{"/" + id + "/resolve/" + rev + "/" + name: {""}, "etag": {`"` + etag + `"`}}
	redirect(w, r, http.StatusTemporaryRedirect, "/api/resolve-cache/models/"+id+"/"+repo.Commit+"/"+name+"?"+q.Encode())
}

func (s *Server) serveResolveCache(w http.ResponseWriter, r *http.Request, f Faults, p string) {
	id, repo, rest, _ := s.repoFor(p)
	if repo == nil {
		missingRepo(w, r)
		return
	}
	commit, name, ok := strings.Cut(rest, "/")
	file := repo.Files[name]
	if !ok || commit != repo.Commit || file == nil || file.LFS {
		hubError(w, http.StatusNotFound, "EntryNotFound", "Entry not found", repo.Commit)
		return
	}
	if !authorize(w, r, id, repo) {
		return
	}
	w.Header().Set("X-Repo-Commit", repo.Commit)
	w.Header().Set("ETag", `"`+GitBlobSHA(file.Data)+`"`)
	s.serveBytes(w, r, f, name, file.Data)
}

// signedURL is the storage host's presigned address of a blob.
func (s *Server) signedURL(xet string) string {
	expires := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	return s.CDNURL + "/xet-bridge-us/" + xet + "?Expires=" + expires + "&Signature=" + s.sign(xet, expires)
}

func (s *Server) sign(xet, expires string) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(xet + "|" + expires))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Server) serveStorage(w http.ResponseWriter, r *http.Request) {
	f := s.record("storage", r)
	if r.Header.Get("Authorization") != "" {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified</Message></Error>`))
		return
	}
	xet, ok := strings.CutPrefix(r.URL.Path, "/xet-bridge-us/")
	q := r.URL.Query()
	exp, _ := strconv.ParseInt(q.Get("Expires"), 10, 64)
	if !ok || !hmac.Equal([]byte(q.Get("Signature")), []byte(s.sign(xet, q.Get("Expires")))) || time.Now().Unix() > exp {
		http.Error(w, "AccessDenied", http.StatusForbidden)
		return
	}
	s.mu.Lock()
	var name string
	var data []byte
	for _, repo := range s.repos {
		for n, file := range repo.Files {
			if file.LFS && xetHash(file.Data) == xet {
				name, data = n, file.Data
			}
		}
	}
	s.mu.Unlock()
	if data == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("ETag", `"`+xet+`"`)
	s.serveBytes(w, r, f, name, data)
}

// serveBytes answers GET/HEAD with Range support, applying the faults.
func (s *Server) serveBytes(w http.ResponseWriter, r *http.Request, f Faults, name string, data []byte) {
	get := r.Method == http.MethodGet
	s.mu.Lock()
	cut, doCut := s.faults.CutAfter[name]
	stall, doStall := s.faults.Stall[name]
	if get && doCut {
		if s.faults.CutRepeat--; s.faults.CutRepeat <= 0 {
			delete(s.faults.CutAfter, name)
		}
	}
	if get && doStall {
		delete(s.faults.Stall, name)
	}
	s.mu.Unlock()
	if f.Corrupt[name] {
		data = append([]byte(nil), data...)
		data[0] ^= 0xff
	}
	if get && (doCut || doStall) {
		start := 0
		if rg := r.Header.Get("Range"); rg != "" {
			_, _ = fmt.Sscanf(rg, "bytes=%d-", &start)
		}
		start = min(max(start, 0), len(data))
		w.Header().Set("Content-Length", fmt.Sprint(len(data)-start))
		if start > 0 {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(data)-1, len(data)))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.WriteHeader(http.StatusOK)
		}
		if doStall {
			half := start + (len(data)-start)/2
			_, _ = w.Write(data[start:half])
			w.(http.Flusher).Flush()
			select {
			case <-time.After(stall):
			case <-r.Context().Done():
				return
			}
			_, _ = w.Write(data[half:])
			return
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
