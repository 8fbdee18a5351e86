//! Building an analyzer: the mode, its encoder and heads, the multilingual tier and
//! the taxonomy's exemplar vectors.

use super::*;

impl Analyzer {
    /// An analyzer for the modes that need no encoder (`reference`, `lexicon`).
    ///
    /// # Panics
    /// For `neural` and `hybrid`, which need [`Analyzer::build`] with an encoder.
    pub fn new(mode: Mode, taxonomy: Taxonomy) -> Analyzer {
        assert!(
            !mode.needs_encoder(),
            "{mode} mode needs Analyzer::build with an encoder"
        );
        Analyzer {
            mode,
            scorer: Scorer::new(mode),
            taxonomy,
            neural: None,
            multilingual: None,
        }
    }

    /// An analyzer for any mode. The neural modes need `encoder`; the taxonomy's
    /// phrases and examples are embedded here, once.
    pub fn build(
        mode: Mode,
        taxonomy: Taxonomy,
        encoder: Option<SharedEncoder>,
    ) -> Result<Analyzer, AnalyzerError> {
        if !mode.needs_encoder() {
            return Ok(Analyzer::new(mode, taxonomy));
        }
        Analyzer::build_with_heads(mode, taxonomy, encoder, Heads::shipped()?)
    }

    /// [`Analyzer::build`] with heads other than the shipped ones (training, a user's
    /// own fine-tuned model).
    pub fn build_with_heads(
        mode: Mode,
        taxonomy: Taxonomy,
        encoder: Option<SharedEncoder>,
        heads: Heads,
    ) -> Result<Analyzer, AnalyzerError> {
        if !mode.needs_encoder() {
            return Ok(Analyzer::new(mode, taxonomy));
        }
        let encoder = encoder.ok_or(AnalyzerError::NeedsEncoder(mode))?;
        if heads.embedding_dim != encoder.dim() {
            return Err(HeadsError::Dim {
                trained: heads.embedding_dim,
                encoder: encoder.dim(),
            }
            .into());
        }
        let exemplars = embed_exemplars(&taxonomy, encoder.as_ref(), true, |t| {
            Some(t.similarity_threshold)
        })?;
        let hybrid = mode == Mode::Hybrid;
        Ok(Analyzer {
            mode,
            scorer: Scorer::new(mode),
            taxonomy,
            neural: Some(Arc::new(Neural {
                encoder,
                heads: if hybrid { heads.hybrid } else { heads.neural },
                hybrid,
                exemplars,
                categories: (heads.restaurant_categories, heads.restaurant_thresholds),
                themes_from_head: false,
            })),
            multilingual: None,
        })
    }

    /// Score the languages the shipped multilingual heads cover with `encoder` (the
    /// multilingual encoder) instead of refusing them.
    pub fn with_multilingual(self, encoder: SharedEncoder) -> Result<Analyzer, AnalyzerError> {
        self.with_multilingual_heads(encoder, MultilingualHeads::shipped()?)
    }

    /// [`Analyzer::with_multilingual`] with heads other than the shipped ones.
    pub fn with_multilingual_heads(
        self,
        encoder: SharedEncoder,
        heads: MultilingualHeads,
    ) -> Result<Analyzer, AnalyzerError> {
        if heads.embedding_dim != encoder.dim() {
            return Err(HeadsError::Dim {
                trained: heads.embedding_dim,
                encoder: encoder.dim(),
            }
            .into());
        }
        // Examples only: the phrases are English keywords, which match nothing across
        // languages and were most of the cold start (2.8 s with them, both encoders).
        let exemplars = embed_exemplars(&self.taxonomy, encoder.as_ref(), false, |t| {
            t.multilingual_similarity_threshold
        })?;
        Ok(Analyzer {
            multilingual: Some(Arc::new(Multilingual {
                encoder,
                heads,
                exemplars,
            })),
            ..self
        })
    }

    /// Languages scored besides English (none without the multilingual tier).
    pub fn languages(&self) -> Vec<&str> {
        self.multilingual
            .as_ref()
            .map(|m| m.heads.languages.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Themes from the trained restaurant-category head instead of phrases and
    /// exemplars (neural modes, with a taxonomy that defines those categories).
    pub fn with_category_head(self) -> Result<Analyzer, AnalyzerError> {
        let Some(neural) = &self.neural else {
            return Err(AnalyzerError::NeedsEncoder(self.mode));
        };
        if let Some(missing) = neural
            .categories
            .0
            .classes
            .iter()
            .find(|c| self.taxonomy.label(c).is_none())
        {
            return Err(AnalyzerError::CategoriesNotInTaxonomy {
                head: missing.clone(),
                taxonomy: self.taxonomy.name.clone(),
            });
        }
        let n = Neural {
            encoder: neural.encoder.clone(),
            heads: neural.heads.clone(),
            hybrid: neural.hybrid,
            exemplars: Vec::new(),
            categories: neural.categories.clone(),
            themes_from_head: true,
        };
        Ok(Analyzer {
            neural: Some(Arc::new(n)),
            ..self
        })
    }
}

/// The exemplars of every theme with examples and a threshold (`threshold` reads it
/// from the theme: each encoder's cosines have their own scale).
fn embed_exemplars(
    taxonomy: &Taxonomy,
    encoder: &dyn SentenceEncoder,
    with_phrases: bool,
    threshold: impl Fn(&crate::themes::Theme) -> Option<f64>,
) -> Result<Vec<ThemeExemplars>, EncodeError> {
    let mut texts: Vec<&str> = Vec::new();
    let mut owners: Vec<usize> = Vec::new();
    for (ti, t) in taxonomy.themes().iter().enumerate() {
        // Phrases count as exemplars only for themes that opted in with examples:
        // a lone word like "app" is too vague to match sentences by similarity.
        if t.examples.is_empty() || threshold(t).is_none() {
            continue;
        }
        let phrases = if with_phrases {
            &t.phrase_texts[..]
        } else {
            &[]
        };
        for e in t.examples.iter().chain(phrases) {
            texts.push(e);
            owners.push(ti);
        }
    }
    let vectors = encoder.encode(&texts)?;
    let mut out: Vec<ThemeExemplars> = Vec::new();
    for (ti, v) in owners.into_iter().zip(vectors) {
        match out.iter_mut().find(|e| e.theme == ti) {
            Some(e) => e.vectors.push(v),
            None => out.push(ThemeExemplars {
                theme: ti,
                vectors: vec![v],
                threshold: threshold(&taxonomy.themes()[ti]).unwrap_or(f64::INFINITY),
            }),
        }
    }
    Ok(out)
}
