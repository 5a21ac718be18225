// Command unixecho listens on the unix socket given as its argument, prints "listening",
// and answers each connection's first line with "echo: " and that line. The krun tests run
// it as a guest to check that the stand-in relays vsock ports.
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
)

func main() {
	l, err := net.Listen("unix", os.Args[1])
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("listening")
	for {
		c, err := l.Accept()
		if err != nil {
			os.Exit(1)
		}
		line, _ := bufio.NewReader(c).ReadString('\n')
		fmt.Fprintf(c, "echo: %s", line)
		c.Close()
	}
}
