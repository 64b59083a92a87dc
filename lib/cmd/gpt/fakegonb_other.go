//go:build !unix

package main

import "errors"

func startFakeGoNB() (func() (int, int64), error) {
	return nil, errors.New("bench display: the stand-in for GoNB's kernel needs named pipes (Unix)")
}
