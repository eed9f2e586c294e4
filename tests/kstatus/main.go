// kstatus-judge reads Kubernetes objects as JSON, one per line on stdin, and prints for each the
// verdict of Flux's status library (sigs.k8s.io/cli-utils/pkg/kstatus/status) as one JSON line:
// {"status": "Current|InProgress|Failed|…", "message": "…"}. tests/kstatus.rs builds it with
// scripts/build-kstatus.sh and feeds it objects a real operator wrote.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Error   string `json:"error,omitempty"`
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 0, 1<<20), 16<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		// Unstructured's own decoder keeps integers as int64, as kstatus reads them.
		object := &unstructured.Unstructured{}
		if err := object.UnmarshalJSON(in.Bytes()); err != nil {
			fmt.Fprintln(os.Stderr, "not a Kubernetes object:", err)
			os.Exit(2)
		}
		result, err := status.Compute(object)
		v := verdict{}
		if err != nil {
			v.Error = err.Error()
		} else {
			v.Status, v.Message = result.Status.String(), result.Message
		}
		if err := out.Encode(v); err != nil {
			os.Exit(3)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "reading stdin:", err)
		os.Exit(2)
	}
}
