// Command probe is the single-node tests' workload, run from a FROM-scratch image.
//
//	probe serve ADDR   answers GET /healthz with "ok" and GET / with the pod's hostname
//	probe get URL      fetches URL (resolving its host through the pod's DNS), prints the
//	                   body and exits 0 on HTTP 200, 1 otherwise
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: probe serve ADDR | probe get URL")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2])
	case "get":
		os.Exit(get(os.Args[2]))
	default:
		fmt.Fprintln(os.Stderr, "usage: probe serve ADDR | probe get URL")
		os.Exit(2)
	}
}

func serve(addr string) {
	hostname, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, hostname)
	})
	server := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintln(os.Stderr, server.ListenAndServe())
	os.Exit(1)
}

func get(url string) int {
	client := &http.Client{Timeout: 10 * time.Second}
	response, err := client.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer response.Body.Close()
	body, _ := io.ReadAll(response.Body)
	fmt.Printf("%d %s", response.StatusCode, body)
	if response.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}
