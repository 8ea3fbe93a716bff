package main

import "syscall"

// dieWithParent has the child killed when the thread that started it ends
// (Go keeps its threads for the process's life unless a goroutine locked
// to one exits), so a killed `samenplan bench` leaves no pouchdb-server
// listening.
func dieWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
