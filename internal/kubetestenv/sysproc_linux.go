package kubetestenv

import "syscall"

// sysProcAttr makes the kernel kill the control plane when the test binary dies (a test timeout panics the
// binary without running cleanups), so no etcd or kube-apiserver outlives the test that started it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
