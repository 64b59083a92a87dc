package corpus

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"strings"
)

// vendored holds two mirror pages (Казаки, Декабристы) so quick mode works offline and without
// ../shared; see mirror/README.md.
//
//go:embed mirror/*.shtml
var vendored embed.FS

// MirrorPrefix is the path under which lib.ru serves Tolstoy's pages, and the mirror serves its files.
const MirrorPrefix = "/t/tolstoj_lew_nikolaewich/"

// QuickURLs are the pages of the vendored mirror, for quick mode.
var QuickURLs = []string{
	"http://az.lib.ru/t/tolstoj_lew_nikolaewich/text_0039.shtml",
	"http://az.lib.ru/t/tolstoj_lew_nikolaewich/text_1860_dekabristy.shtml",
}

// MirrorHandler serves a folder of lib.ru pages (such as ../shared/libru-mirror) under
// MirrorPrefix; dir "" serves the vendored pages. contentType is sent with each page: lib.ru's own
// is "text/html; charset=windows-1251", and "text/html" tests decoding without a named charset.
func MirrorHandler(dir, contentType string) (http.Handler, error) {
	var files fs.FS
	if dir == "" {
		sub, err := fs.Sub(vendored, "mirror")
		if err != nil {
			return nil, err
		}
		files = sub
	} else {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("mirror folder %q: not a folder (%v)", dir, err)
		}
		files = os.DirFS(dir)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, MirrorPrefix)
		if !ok || name == "" || strings.Contains(name, "/") || !strings.HasSuffix(name, ".shtml") {
			http.NotFound(w, r)
			return
		}
		data, err := fs.ReadFile(files, path.Clean(name))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write(data)
	}), nil
}

// Mirror is a local HTTP server of lib.ru pages.
type Mirror struct {
	// URL is the server's base URL, for Fetcher.BaseURL.
	URL    string
	server *http.Server
}

// StartMirror serves a mirror folder (dir "" for the vendored pages) on a free loopback port.
func StartMirror(dir string) (*Mirror, error) {
	h, err := MirrorHandler(dir, "text/html; charset=windows-1251")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting the mirror server: %w", err)
	}
	m := &Mirror{URL: "http://" + ln.Addr().String(), server: &http.Server{Handler: h}}
	go func() {
		if err := m.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "mirror server: %v\n", err)
		}
	}()
	return m, nil
}

// Close stops the server.
func (m *Mirror) Close() error { return m.server.Close() }
