package functions

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wispbus/wisp/wasm"
)

// On-disk layout under Config.DataDir:
//
//	modules/<sha256>.wasm     module bytes, content-addressed, shared by versions
//	deployments/<name>.json   one deployment: manifest, module hash, version, state
//	cache/                    wazero's compilation cache
//
// Files are written through a synced temporary file and a rename, so a
// crash leaves the old or the new version. A module is written before the
// deployment that names it, so a deployment never names a missing module.

// deployment is what deployments/<name>.json holds.
type deployment struct {
	Manifest Manifest  `json:"manifest"`
	Module   string    `json:"module"` // hex SHA-256 of the module bytes
	Version  int       `json:"version"`
	State    State     `json:"state"`
	Error    string    `json:"error,omitempty"`
	Deployed time.Time `json:"deployed"`

	native wasm.NativeFunc // DeployNative: not persisted
}

type store struct {
	dir string
}

func openStore(dir string) (*store, error) {
	for _, d := range []string{"modules", "deployments", "cache"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("functions: %w", err)
		}
	}
	return &store{dir: dir}, nil
}

func (s *store) modulePath(hash string) string {
	return filepath.Join(s.dir, "modules", hash+".wasm")
}

func (s *store) deploymentPath(name string) string {
	return filepath.Join(s.dir, "deployments", name+".json")
}

// putModule stores module bytes under their hash (once).
func (s *store) putModule(hash string, bin []byte) error {
	p := s.modulePath(hash)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := writeFileAtomic(p, bin); err != nil {
		return fmt.Errorf("functions: store module: %w", err)
	}
	return nil
}

func (s *store) module(hash string) ([]byte, error) {
	bin, err := os.ReadFile(s.modulePath(hash))
	if err != nil {
		return nil, fmt.Errorf("functions: module %s: %w", hash, err)
	}
	if got := wasm.Hash(bin); got != hash {
		return nil, fmt.Errorf("functions: module %s is corrupt (its bytes hash to %s)", hash, got)
	}
	return bin, nil
}

func (s *store) putDeployment(d deployment) error {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(s.deploymentPath(d.Manifest.Name), b); err != nil {
		return fmt.Errorf("functions: store deployment: %w", err)
	}
	return nil
}

func (s *store) deleteDeployment(name string) error {
	err := os.Remove(s.deploymentPath(name))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("functions: %w", err)
	}
	return syncDir(filepath.Join(s.dir, "deployments"))
}

func (s *store) deployments() ([]deployment, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, "deployments"))
	if err != nil {
		return nil, fmt.Errorf("functions: %w", err)
	}
	var out []deployment
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, "deployments", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("functions: %w", err)
		}
		var d deployment
		if err := json.Unmarshal(b, &d); err != nil || d.Manifest.Name != name {
			return nil, fmt.Errorf("functions: deployments/%s is corrupt: %v", e.Name(), err)
		}
		out = append(out, d)
	}
	return out, nil
}

// gcModules removes module files no deployment names.
func (s *store) gcModules(inUse map[string]bool) {
	entries, _ := os.ReadDir(filepath.Join(s.dir, "modules"))
	for _, e := range entries {
		hash, ok := strings.CutSuffix(e.Name(), ".wasm")
		if ok && !inUse[hash] {
			_ = os.Remove(filepath.Join(s.dir, "modules", e.Name()))
		}
	}
}

// writeFileAtomic writes data to path through a synced temporary file and
// a rename, then syncs the directory.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
