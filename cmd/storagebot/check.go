package main

import (
	"context"
	"io"

	"github.com/storagebot/storagebot/internal/checkcmd"
)

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return checkcmd.Run(ctx, args, stdout, stderr)
}
