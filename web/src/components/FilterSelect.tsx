// The filter controls above the lists: a clearable choice and a free-text filter that writes to
// the URL once typing pauses. Each names itself for screen readers by its label.
import { CloseButton, Select, TextInput } from '@mantine/core';
import type { ReactNode } from 'react';
import { useUrlText } from '../lib/url';

type Choice = string | { value: string; label: string };

/** A clearable choice; its placeholder says what no choice means ("Any status"). */
export function FilterSelect({
  label,
  placeholder = `Any ${label.toLowerCase()}`,
  data,
  value,
  onChange,
  width,
  error,
}: {
  label: string;
  placeholder?: string;
  data: readonly Choice[];
  value: string | null;
  onChange: (value: string | null) => void;
  width: number;
  error?: ReactNode;
}) {
  return (
    <Select
      aria-label={label}
      placeholder={placeholder}
      clearable
      data={data as Choice[]}
      value={value}
      onChange={onChange}
      error={error}
      w={width}
    />
  );
}

/** A text filter written to the URL once typing pauses (or on Enter), with a clear button. */
export function TextFilter({
  label,
  placeholder = label,
  value,
  onChange,
  width = 170,
  leftSection,
  error,
}: {
  label: string;
  placeholder?: string;
  value: string | null;
  onChange: (value: string | null) => void;
  width?: number;
  leftSection?: ReactNode;
  error?: ReactNode;
}) {
  const filter = useUrlText(value, onChange);
  return (
    <TextInput
      aria-label={label}
      placeholder={placeholder}
      value={filter.text}
      onChange={(e) => filter.change(e.currentTarget.value)}
      onKeyDown={(e) => e.key === 'Enter' && filter.flush()}
      leftSection={leftSection}
      error={error}
      rightSection={
        filter.text ? (
          <CloseButton
            size="sm"
            aria-label={`Clear ${label}`}
            onClick={() => {
              filter.change('');
              filter.flush();
            }}
          />
        ) : null
      }
      w={width}
    />
  );
}
