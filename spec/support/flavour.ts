/** Which decorator flavour this compiled copy of the specs uses, for test titles. */
export const flavour: 'legacy' | 'standard' = (() => {
  let seen: 'legacy' | 'standard' = 'legacy';
  function probe(_target: unknown, context: unknown): void {
    seen = typeof context === 'object' ? 'standard' : 'legacy';
  }
  class Probe {
    @(probe as any)
    method(): void {}
  }
  void Probe;
  return seen;
})();
