import { Center, Loader } from '@mantine/core';

export const PageLoader = () => (
  <Center py={80}>
    <Loader size="sm" aria-label="Loading" />
  </Center>
);
