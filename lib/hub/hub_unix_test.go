//go:build unix

package hub

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/gonb-gpt/tutorial/lib/hub/hubtest"
)

func inode(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Ino)
	}
	return 0
}

// A group-shared cache (umask 002): blobs, refs, locks and folders get the umask's permissions, as
// Python's files do, so that the group can use them too.
func TestUmaskRespected(t *testing.T) {
	old := syscall.Umask(0o002)
	defer syscall.Umask(old)
	repo := testRepo(t)
	srv := startHub(t, repo, hubtest.Faults{})
	c, home := client(t, srv)
	if _, err := c.DownloadModel(context.Background(), repoID, ""); err != nil {
		t.Fatal(err)
	}
	_ = filepath.WalkDir(filepath.Join(home, "hub"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		st, _ := os.Stat(p)
		want := fs.FileMode(0o664)
		if d.IsDir() {
			want = 0o775
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: %v, want %v", p, st.Mode().Perm(), want)
		}
		return nil
	})
}

// A read-only cache that already holds the model serves it (as a user who is not root: root
// writes anyway, and then TestCacheNotRewritten is the check).
func TestReadOnlyCache(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Log("running as root, who can write to read-only folders: TestCacheNotRewritten checks that nothing is written")
	}
	repo := testRepo(t)
	srv := startHub(t, repo, hubtest.Faults{})
	c, home := client(t, srv)
	snap, err := c.DownloadModel(context.Background(), repoID, "")
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(home, "hub")
	_ = filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeSymlink == 0 {
			st, _ := os.Stat(p)
			_ = os.Chmod(p, st.Mode().Perm()&^0o222)
		}
		return nil
	})
	t.Cleanup(func() {
		_ = filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	if got, err := c.DownloadModel(context.Background(), repoID, ""); err != nil || got != snap {
		t.Errorf("read-only cache: %s, %v", got, err)
	}
	if got, err := c.Download(context.Background(), repoID, "main", []string{"config.json", "vocab.json"}); err != nil || got != snap {
		t.Errorf("read-only cache, files: %s, %v", got, err)
	}
}
