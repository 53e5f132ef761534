// Live data at a pace a table can render: a busy pool changes the cache many times a second (a
// lease event, a usage report, a key's spend), and re-laying out a 50-row table for each change
// would keep the main thread busy. Lists render the latest data at most every LIVE_RENDER_MS.
import { useThrottledValue } from '@mantine/hooks';

export const LIVE_RENDER_MS = 250;

export function useLiveData<T>(data: T): T {
  return useThrottledValue(data, LIVE_RENDER_MS);
}
