// The session gate: no token -> sign-in; a token -> a client of its own, `me` to learn the role,
// then the console. A token the server rejects, or one that expires, ends the session with the
// reason; any other failure to reach the server says so and offers to try again.
import { Button, Center, Loader, Stack } from '@mantine/core';
import { useEffect, useMemo } from 'react';
import { RouterProvider } from 'react-router';
import { Provider, useQuery } from 'urql';
import { MeQuery } from './api/documents';
import { createClient } from './client';
import { ErrorNotice } from './components/ErrorNotice';
import { MeContext } from './me';
import { router } from './router';
import { SignInPage } from './routes/signin/SignInPage';
import { rejectionMessage, signOut, tokenExpiry, useSession } from './session';

const MAX_TIMER_MS = 2 ** 31 - 1;

function Console() {
  const [{ data, error }, retry] = useQuery({ query: MeQuery, requestPolicy: 'network-only' });
  if (error && !data) {
    return (
      <Center mih="100vh" p="md">
        <Stack maw={480}>
          <ErrorNotice error={error} title="MPK could not be reached" />
          <Button variant="light" onClick={() => retry({ requestPolicy: 'network-only' })}>
            Try again
          </Button>
        </Stack>
      </Center>
    );
  }
  if (!data) {
    return (
      <Center mih="100vh">
        <Loader aria-label="Signing in" />
      </Center>
    );
  }
  return (
    <MeContext.Provider value={data.me}>
      <RouterProvider router={router} />
    </MeContext.Provider>
  );
}

function SignedIn({ token }: { token: string }) {
  const session = useMemo(() => createClient(token), [token]);
  useEffect(() => () => session.dispose(), [session]);
  // A token ends on time even if nothing asks the server in the meantime.
  useEffect(() => {
    const expiry = tokenExpiry(token);
    if (!expiry) return;
    const timer = setTimeout(
      () => signOut(rejectionMessage('EXPIRED')),
      Math.min(MAX_TIMER_MS, Math.max(0, expiry.getTime() - Date.now())),
    );
    return () => clearTimeout(timer);
  }, [token]);
  return (
    <Provider value={session.client}>
      <Console />
    </Provider>
  );
}

export function App() {
  const { token, reason } = useSession();
  return token ? <SignedIn key={token} token={token} /> : <SignInPage reason={reason} />;
}
