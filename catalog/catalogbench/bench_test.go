package catalogbench

import (
	"context"
	"testing"
)

func TestRunSmall(t *testing.T) {
	res, err := Run(context.Background(), Config{Records: 2000, Batch: 500, Queries: 50, Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Latest.Avg != 1 || res.TagInGroup.Avg == 0 || res.Candidates.Avg != 10 || res.FileBytes == 0 {
		t.Fatalf("unexpected result %+v", res)
	}
}
