// Whether an operation asks only for the schema (`__schema`, `__type`, `__typename`): such a
// request needs no identity, so a bad token on it (a placeholder left in GraphiQL's header
// editor, say) does not stop the schema from loading.
import { type DocumentNode, Kind, parse, type SelectionSetNode } from 'graphql';

export function isIntrospectionOnly(query: string | undefined): boolean {
  if (!query || query.length > 100_000) return false;
  let document: DocumentNode;
  try {
    document = parse(query, { maxTokens: 5000 });
  } catch {
    return false;
  }
  const fragments = new Map(
    document.definitions.flatMap((d) =>
      d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d.selectionSet] as const] : [],
    ),
  );
  const seen = new Set<string>();
  const onlyMeta = (set: SelectionSetNode): boolean =>
    set.selections.every((selection) => {
      if (selection.kind === Kind.FIELD) return selection.name.value.startsWith('__');
      if (selection.kind === Kind.INLINE_FRAGMENT) return onlyMeta(selection.selectionSet);
      const name = selection.name.value;
      if (seen.has(name)) return true;
      seen.add(name);
      const fragment = fragments.get(name);
      return fragment !== undefined && onlyMeta(fragment);
    });
  const operations = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
  return (
    operations.length > 0 &&
    operations.every(
      (op) => op.kind === Kind.OPERATION_DEFINITION && op.operation === 'query' && onlyMeta(op.selectionSet),
    )
  );
}
