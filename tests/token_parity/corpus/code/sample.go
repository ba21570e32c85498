package main

import (
	"fmt"
	"strings"
)

type Point struct {
	X, Y int
}

func (p Point) String() string {
	return fmt.Sprintf("(%d, %d)", p.X, p.Y)
}

func main() {
	pts := []Point{{1, 2}, {3, 4}}
	var sb strings.Builder
	for i, p := range pts {
		if i > 0 {
			sb.WriteString(" -> ")
		}
		sb.WriteString(p.String())
	}
	fmt.Println(sb.String())
}
