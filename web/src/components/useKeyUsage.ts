// Keys' spend and load, live, for the pages that show them: every key the server pushes lands in
// the cache, so every table and bar showing that key moves. The subscription runs on the client
// directly, so its messages re-render only what shows a changed key, not the page that asked.
import { useEffect } from 'react';
import { useClient } from 'urql';
import { LiveKeyUsageSubscription } from '../api/documents';

/** Follows every key's usage, or one key's (its current state first), while mounted. */
export function useKeyUsage(keyId?: string) {
  const client = useClient();
  useEffect(() => {
    const subscription = client.subscription(LiveKeyUsageSubscription, { keyId }).subscribe(() => {});
    return () => subscription.unsubscribe();
  }, [client, keyId]);
}
