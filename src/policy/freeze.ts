/** Freezes a value and everything reachable from it, so policy values passed inward cannot be changed. */
export function deepFreeze<T>(value: T, seen: WeakSet<object> = new WeakSet()): T {
  // Recurse into already-frozen objects too: a frozen array may still hold unfrozen items.
  if (value !== null && typeof value === 'object' && !seen.has(value)) {
    seen.add(value);
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner, seen);
  }
  return value;
}
