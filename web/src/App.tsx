import { useMemo, useState } from 'react';
import { Provider, useQuery } from 'urql';
import { createClient, readToken, TOKEN_KEY } from './client';
import { graphql } from './gql';

const MeQuery = graphql(`
  query Me {
    me {
      id
      email
      role
      tier
    }
  }
`);

function Me() {
  const [{ data, fetching, error }] = useQuery({ query: MeQuery });
  if (fetching) return <p>Loading…</p>;
  if (error) {
    const code = error.graphQLErrors[0]?.extensions?.code;
    return (
      <p role="alert">
        {error.graphQLErrors[0]?.message ?? error.message}
        {code ? ` (${String(code)})` : ''}
      </p>
    );
  }
  if (!data) return null;
  return (
    <dl className="me">
      <dt>Signed in as</dt>
      <dd data-testid="me-id">{data.me.id}</dd>
      <dt>Role</dt>
      <dd data-testid="me-role">{data.me.role}</dd>
      <dt>Tier</dt>
      <dd>{data.me.tier}</dd>
    </dl>
  );
}

export function App() {
  const [token, setToken] = useState(readToken);
  const [draft, setDraft] = useState('');
  const client = useMemo(() => (token ? createClient(token) : null), [token]);

  return (
    <main>
      <header>
        <h1>MPK</h1>
        <p>Managed Provider Keys</p>
      </header>
      {client ? (
        <Provider value={client}>
          <Me />
          <button
            type="button"
            onClick={() => {
              localStorage.removeItem(TOKEN_KEY);
              setToken('');
            }}
          >
            Sign out
          </button>
        </Provider>
      ) : (
        <form
          onSubmit={(event) => {
            event.preventDefault();
            const value = draft.trim();
            if (!value) return;
            localStorage.setItem(TOKEN_KEY, value);
            setToken(value);
          }}
        >
          <label htmlFor="token">Bearer token</label>
          <input id="token" value={draft} onChange={(e) => setDraft(e.target.value)} placeholder="npm run token -- --role admin --sub you" />
          <button type="submit">Sign in</button>
        </form>
      )}
    </main>
  );
}
