// The dashboard's entry: styles, then the app. Everything else loads per page (pages.ts).
import { render } from 'preact';
import './styles.css';
import { App } from './app.tsx';

render(<App />, document.getElementById('app')!);
