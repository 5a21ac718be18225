package main

import "testing"

func testCp(t *testing.T, p *project, driver string) {}
