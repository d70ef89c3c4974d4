package log

import (
	"os"

	"golang.org/x/sys/unix"
)

// datasync is fdatasync(2): file data plus the metadata needed to read it
// back (the size), without the mtime update fsync would also write.
func datasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = unix.Fdatasync(int(fd))
			if serr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}
