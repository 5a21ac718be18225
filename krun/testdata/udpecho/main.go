// Command udpecho answers each UDP datagram on the address given as its argument with
// "echo: " and the datagram. It is a shell-less image's whole content in sbx's tests.
package main

import (
	"fmt"
	"net"
	"os"
)

func main() {
	c, err := net.ListenPacket("udp", os.Args[1])
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("udpecho listening on", c.LocalAddr())
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			os.Exit(1)
		}
		_, _ = c.WriteTo(append([]byte("echo: "), buf[:n]...), from)
	}
}
