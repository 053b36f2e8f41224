package fetch

import (
	"context"
	"errors"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
)

var (
	// ErrSkipDesc tells Dispatch to skip a descriptor and its children
	// without failing the walk.
	ErrSkipDesc = errors.New("skip descriptor")

	// ErrStopHandler tells Handlers to stop running the handlers after the
	// one that returned it, keeping the children gathered so far.
	ErrStopHandler = errors.New("stop handler")
)

// Handler does one step of work on a descriptor and returns the children to
// walk next.
type Handler interface {
	Handle(ctx context.Context, desc ocispec.Descriptor) (children []ocispec.Descriptor, err error)
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	return f(ctx, desc)
}

// Handlers runs handlers in order on each descriptor and returns all their
// children together. A handler returning ErrStopHandler ends the sequence
// for that descriptor without error.
func Handlers(handlers ...Handler) HandlerFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		var children []ocispec.Descriptor
		for _, h := range handlers {
			ch, err := h.Handle(ctx, desc)
			if errors.Is(err, ErrStopHandler) {
				break
			}
			if err != nil {
				return nil, err
			}
			children = append(children, ch...)
		}
		return children, nil
	}
}

// Dispatch runs handler on every descriptor in parallel and recurses into
// the children it returns. The limiter, if not nil, bounds how many handlers
// run at once; it is released before recursing so that parents never hold
// slots their children need. The first error cancels the rest.
func Dispatch(ctx context.Context, handler Handler, limiter *semaphore.Weighted, descs ...ocispec.Descriptor) error {
	eg, egCtx := errgroup.WithContext(ctx)
	for _, desc := range descs {
		if limiter != nil {
			if err := limiter.Acquire(egCtx, 1); err != nil {
				break // egCtx is done: Wait returns the cause
			}
		}
		eg.Go(func() error {
			children, err := handler.Handle(egCtx, desc)
			if limiter != nil {
				limiter.Release(1)
			}
			if errors.Is(err, ErrSkipDesc) {
				return nil
			}
			if err != nil {
				return err
			}
			if len(children) == 0 {
				return nil
			}
			return Dispatch(egCtx, handler, limiter, children...)
		})
	}
	if err := eg.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}
