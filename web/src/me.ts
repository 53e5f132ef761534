// The signed-in caller (from `me`), for every component that decides what to render by role.
import { createContext, useContext } from 'react';
import type { MeQuery } from './gql/graphql';

export type Me = MeQuery['me'];

export const MeContext = createContext<Me | null>(null);

export function useMe(): Me {
  const me = useContext(MeContext);
  if (!me) throw new Error('useMe() outside a signed-in session');
  return me;
}
