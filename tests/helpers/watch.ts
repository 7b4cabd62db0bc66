/** How a watched promise settled so far. */
export type Outcome = 'resolved' | 'pending' | Error;

/** Records how a promise settles, without awaiting it. */
export function watch(p: Promise<unknown>): { readonly outcome: Outcome } {
  const w: { outcome: Outcome } = { outcome: 'pending' };
  p.then(
    () => {
      w.outcome = 'resolved';
    },
    (e: Error) => {
      w.outcome = e;
    },
  );
  return w;
}
