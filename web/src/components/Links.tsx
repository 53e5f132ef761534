// Every id, key and user links to where it is shown in full. Plain router links styled like
// Mantine's anchors: tables render many of them, several times a second when live.
import { type CSSProperties, memo } from 'react';
import { Link } from 'react-router';
import { shortId } from '../lib/format';
import classes from './Links.module.css';

interface LinkStyle {
  size?: 'xs' | 'sm';
  fw?: number;
  style?: CSSProperties;
}

const className = (size: LinkStyle['size'] = 'sm', mono = false) =>
  `${classes.link} ${classes[size]}${mono ? ` ${classes.mono}` : ''}`;

export const KeyLink = memo(({ id, label, size, fw, style }: { id: string; label?: string | null } & LinkStyle) => (
  <Link to={`/keys/${id}`} className={className(size)} style={{ fontWeight: fw, ...style }}>
    {label ?? shortId(id)}
  </Link>
));

export const LeaseLink = memo(({ id, size, style }: { id: string } & LinkStyle) => (
  <Link to={`/leases/${id}`} className={className(size, true)} title={id} style={style}>
    {shortId(id)}
  </Link>
));

/** A user's leases are where a user is shown in full. */
export const UserLink = memo(({ id, size, style }: { id: string } & LinkStyle) => (
  <Link to={`/leases?userId=${encodeURIComponent(id)}`} className={className(size)} style={style}>
    {id}
  </Link>
));
