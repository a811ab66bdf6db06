//go:build !linux

package kubetestenv

import "syscall"

// sysProcAttr has nothing to add outside Linux; t.Cleanup stops the processes.
func sysProcAttr() *syscall.SysProcAttr { return nil }
