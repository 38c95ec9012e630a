//! Rules for the top-level keys: a config that declares something, the
//! `stack` it belongs to, `broker.url`, and `safety`.

use super::Checker;
use crate::config::locate::locate_range;
use crate::contract::url::BrokerUrl;
use crate::diagnostic::Diagnostic;

impl Checker<'_> {
    pub(super) fn top_level(&mut self) {
        let config = self.config;
        if config.resource_count() == 0 && config.stack.is_none() {
            let mut diagnostic = Diagnostic::error(
                "config::empty",
                "the config declares nothing: no stack and no resources",
            )
            .with_help("start with `stack: NAME` and a `pools:` section; see examples/");
            if !config.sources.is_empty() {
                // The whole first line: the file as a whole is the problem.
                let text = config.sources.text(0);
                let first_line = text.find('\n').unwrap_or(text.len());
                let start = locate_range(&config.sources, 0, 0..first_line);
                diagnostic = diagnostic.with_label(start, "empty config");
            }
            self.out.push(diagnostic);
            return;
        }
        match &config.stack {
            Some(stack) => {
                self.name(stack.file, &stack.value, "stack");
                self.plain_text(stack.file, &stack.value);
            }
            None => {
                let first = config
                    .pools
                    .values()
                    .map(|d| (d.file, &d.name))
                    .chain(config.app_configs.values().map(|d| (d.file, &d.name)))
                    .chain(config.app_instances.values().map(|d| (d.file, &d.name)))
                    .chain(config.destinations.values().map(|d| (d.file, &d.name)))
                    .min_by_key(|(file, name)| (*file, name.at.line, name.at.column));
                if let Some((file, name)) = first {
                    self.error(
                        "config::missing_stack",
                        "resources are declared but no `stack` is set".to_owned(),
                        file,
                        &name.at,
                        "first resource declared here",
                    )
                    .help = Some(
                        "add `stack: NAME` to one file; poolform labels what it manages with it"
                            .to_owned(),
                    );
                }
            }
        }
        if let Some(url) = &config.broker_url {
            self.plain_text(url.file, &url.value);
            if let Err(error) = url.value.value.parse::<BrokerUrl>() {
                self.error(
                    "config::broker_url",
                    error.to_string(),
                    url.file,
                    &url.value.at,
                    "not a broker URL",
                )
                .help =
                    Some("write http://HOST[:PORT], https://HOST[:PORT] or file:PATH".to_owned());
            }
        }
        if let Some(safety) = &config.safety
            && let Some(percent) = &safety.value.value.max_delete_percent
            && percent.value > 100
        {
            self.error(
                "config::out_of_range",
                format!(
                    "`safety.max_delete_percent` is {}, but a percentage is at most 100",
                    percent.value
                ),
                safety.file,
                &percent.at,
                "over 100",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{check, check_files};

    #[test]
    fn empty_config() {
        let files = vec![("empty.yaml".to_owned(), "# nothing yet\n".to_owned())];
        let rejected = crate::config::load_text(files).expect_err("empty");
        assert_eq!(rejected.items[0].code, "config::empty");
        let label = rejected.items[0].primary.as_ref().expect("located");
        assert_eq!((label.location.line, label.location.column), (1, 1));
    }

    #[test]
    fn missing_stack() {
        check_files(
            vec!["pools:\n  live: {}\n".to_owned()],
            "config::missing_stack",
            "live",
        );
    }

    #[test]
    fn max_delete_percent_over_100() {
        check(
            "safety: {max_delete_percent: 150}\n",
            "config::out_of_range",
            "150",
        );
    }

    #[test]
    fn a_broker_url_the_backends_cannot_open() {
        for url in ["ftp://broker", "broker.json", "http://", "file:"] {
            check(
                &format!("broker: {{url: '{url}'}}\n"),
                "config::broker_url",
                &format!("'{url}'"),
            );
        }
    }
}
